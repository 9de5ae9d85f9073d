import { EventEmitter } from 'node:events';
import { CardBridgeError, asCardBridgeError } from '../errors.js';
import { describeCardType, describeKind, recognizeCard } from '../cards/index.js';
import { type RawTransmit, createApduTransport } from '../pcsc/transport.js';
import type { CommandApdu, ResponseApdu } from '../pcsc/apdu.js';
import { SerialQueue } from '../util/serial-queue.js';
import type {
  CardLocation,
  CardRequest,
  CardSelector,
  CardSession,
  CardState,
  CardType,
  ReaderRegistry,
  ReaderState,
  RegistryEvent,
} from './types.js';

/** A backend's live connection to one card. */
export interface Connection {
  transmit: RawTransmit;
  /** Ends the connection; `reset` resets the card so a verified PIN does not outlive us. */
  close(reset: boolean): Promise<void>;
}

export interface RegistryOptions {
  /** An operation holding a card longer than this fails with `Timeout` and frees the card. */
  operationTimeoutMs?: number;
  /** Waits between attempts while another program holds the card exclusively. */
  sharingRetryDelaysMs?: number[];
  /** How long a failed transmit waits to learn whether the card was removed meanwhile. */
  removalGraceMs?: number;
  recognize?: typeof recognizeCard;
}

interface InsertedCard {
  atr: Buffer;
  /** The service's count of card events when it reported this card (pcscd: dwEventState >> 16), if it has one. */
  events?: number;
  /** Increases with every insertion so a late recognition cannot describe a newer card. */
  insertion: number;
  type?: CardType;
  announced: boolean;
  recognised: Promise<void>;
}

interface ReaderEntry {
  name: string;
  queue: SerialQueue;
  card?: InsertedCard;
}

const DEFAULT_SHARING_RETRY_DELAYS_MS = [50, 100, 200, 400, 800];

/**
 * What every reader backend shares: the reader/card bookkeeping, card recognition on insertion,
 * one operation queue per reader, connection lifetime and the events. Backends (real PC/SC,
 * in-process mock) only report what they see and open connections.
 */
export abstract class RegistryBase extends EventEmitter implements ReaderRegistry {
  private readonly entries = new Map<string, ReaderEntry>();
  private insertions = 0;
  /**
   * What sessions remembered about each inserted card, by insertion: only what cannot change
   * while the card stays in. Dropped with the card (removal, reader loss, service loss, a new
   * ATR or event count) and after a failed link, which may be a reset by another program.
   */
  private readonly memory = new Map<number, Map<string, unknown>>();
  private readonly operationTimeoutMs: number;
  private readonly sharingRetryDelaysMs: number[];
  private readonly removalGraceMs: number;
  private readonly recognize: typeof recognizeCard;

  constructor(options: RegistryOptions = {}) {
    super();
    this.operationTimeoutMs = options.operationTimeoutMs ?? 60_000;
    this.sharingRetryDelaysMs = options.sharingRetryDelaysMs ?? DEFAULT_SHARING_RETRY_DELAYS_MS;
    this.removalGraceMs = options.removalGraceMs ?? 1000;
    this.recognize = options.recognize ?? recognizeCard;
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract get serviceAvailable(): boolean;
  protected abstract connect(reader: string, exclusive: boolean): Promise<Connection>;

  readers(): ReaderState[] {
    return [...this.entries.values()].map((entry) => {
      const card = this.cardState(entry);
      return card ? { name: entry.name, card } : { name: entry.name };
    });
  }

  /** How many inserted cards the registry remembers anything about (tests: a removed card leaves nothing). */
  rememberedCards(): number {
    return this.memory.size;
  }

  /** Resolves once every card present now has been recognised. */
  async settled(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.card?.recognised));
  }

  async locate(selector: CardSelector): Promise<CardLocation> {
    const entry = await this.choose(selector);
    const card = this.cardState(entry);
    // Removed while we waited for its recognition.
    if (!card) throw noCard(selector.kind);
    return { reader: entry.name, card };
  }

  locateReaders(selector: Pick<CardSelector, 'reader'>): ReaderState[] {
    const names = new Set(this.candidates(selector).map((e) => e.name));
    return this.readers().filter((r) => names.has(r.name));
  }

  async withCard<T>(selector: CardRequest, operation: (session: CardSession) => Promise<T>): Promise<T> {
    const entry = await this.choose(selector);
    return entry.queue.run(async () => {
      const card = entry.card;
      if (!this.entries.has(entry.name)) throw new CardBridgeError('NoReader', `Reader "${entry.name}" was disconnected`, { reader: entry.name });
      if (!card) throw new CardBridgeError('CardRemoved', `The card was removed from "${entry.name}"`, { reader: entry.name });
      const exclusive = selector.exclusive ?? false;
      // Connected on the first APDU: an operation answered from memory never touches the card.
      let connection: Promise<Connection> | undefined;
      let open = true;
      const transport = createApduTransport(async (bytes) => {
        if (!open) throw new CardBridgeError('Timeout', 'The card operation ran past its time limit');
        connection ??= this.connectWithRetry(entry.name, exclusive);
        // Whatever the backend's link throws is a link fault; the operation's own errors are not.
        return (await connection).transmit(bytes).catch((e: unknown) => {
          throw asCardBridgeError(e);
        });
      });
      const removedError = () => new CardBridgeError('CardRemoved', `The card was removed from "${entry.name}"`, { reader: entry.name });
      const session: CardSession = {
        reader: entry.name,
        atr: card.atr,
        cardType: card.type ?? { kind: 'unknown' },
        exclusive,
        transmit: (command: CommandApdu): Promise<ResponseApdu> => transport.transmit(command),
        remember: async <V>(key: string, read: () => Promise<V>): Promise<V> => {
          if (!this.stillPresent(entry, card)) throw removedError();
          const known = this.memory.get(card.insertion);
          if (known?.has(key)) return known.get(key) as V;
          const value = await read();
          // Pulled out (or swapped) while we read: never keep, nor hand out, what it said.
          if (!this.stillPresent(entry, card)) throw removedError();
          let memo = this.memory.get(card.insertion);
          if (!memo) this.memory.set(card.insertion, (memo = new Map()));
          memo.set(key, value);
          return value;
        },
      };
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new CardBridgeError('Timeout', `The card operation took longer than ${this.operationTimeoutMs} ms`));
        }, this.operationTimeoutMs);
      });
      try {
        return await Promise.race([operation(session), timeout]);
      } catch (e) {
        // A bug (TypeError…) or a caller's own refusal is not a card fault: it leaves as it came.
        if (!(e instanceof CardBridgeError)) throw e;
        const error = e;
        if (error.code === 'TransportError') this.memory.delete(card.insertion);
        const removed = error.code === 'CardRemoved' || (error.code === 'TransportError' && (await this.removedWithin(entry, card, this.removalGraceMs)));
        throw removed ? new CardBridgeError('CardRemoved', `The card was removed from "${entry.name}"`, { reader: entry.name, cause: e }) : error;
      } finally {
        clearTimeout(timer);
        open = false;
        if (connection) await connection.then((c) => c.close(exclusive)).catch(() => undefined);
      }
    });
  }

  // ——— for backends ———

  protected readerAdded(name: string): void {
    if (this.entries.has(name)) return;
    this.entries.set(name, { name, queue: new SerialQueue() });
    this.publish({ type: 'reader-added', reader: name });
  }

  protected readerRemoved(name: string): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.cardRemoved(name);
    this.entries.delete(name);
    this.publish({ type: 'reader-removed', reader: name });
  }

  /**
   * A card is in `name`. `events` is the service's card-event count when it has one: a card
   * swapped faster than the service polls keeps the ATR (identical cards share it) but not the count.
   */
  protected cardInserted(name: string, atr: Buffer, events?: number): void {
    const entry = this.entries.get(name);
    if (!entry) return;
    if (entry.card?.atr.equals(atr) && entry.card.events === events) return;
    if (entry.card) this.cardRemoved(name);
    const insertion = ++this.insertions;
    const card: InsertedCard = { atr: Buffer.from(atr), insertion, announced: false, recognised: Promise.resolve() };
    if (events !== undefined) card.events = events;
    entry.card = card;
    card.recognised = entry.queue
      .run(async () => {
        if (!this.stillPresent(entry, card)) return;
        const connection = await this.connectWithRetry(name, false);
        try {
          card.type = await this.recognize(createApduTransport(connection.transmit));
        } finally {
          await connection.close(false).catch(() => undefined);
        }
      })
      .catch(() => {
        // A card we cannot talk to (mute, held exclusively elsewhere) is still a card.
        card.type = { kind: 'unknown' };
      })
      .then(() => {
        if (!this.stillPresent(entry, card)) return;
        card.announced = true;
        const state = this.cardState(entry);
        if (state) this.publish({ type: 'card-inserted', reader: name, card: state });
      });
  }

  protected cardRemoved(name: string): void {
    const entry = this.entries.get(name);
    const card = entry?.card;
    if (!entry || !card) return;
    entry.card = undefined;
    this.memory.delete(card.insertion);
    if (card.announced) this.publish({ type: 'card-removed', reader: name });
  }

  protected publish(event: RegistryEvent): void {
    this.emit('event', event);
  }

  protected readerNames(): string[] {
    return [...this.entries.keys()];
  }

  // ——— internals ———

  private stillPresent(entry: ReaderEntry, card: InsertedCard): boolean {
    return this.entries.get(entry.name) === entry && entry.card?.insertion === card.insertion;
  }

  /**
   * A transmit that fails because the card was just pulled out usually reports a generic
   * transaction failure before the service has noticed the removal (pcscd polls some
   * readers only every ~400 ms). Waiting briefly for the removal lets us name the real cause.
   */
  private async removedWithin(entry: ReaderEntry, card: InsertedCard, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.stillPresent(entry, card)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }

  private cardState(entry: ReaderEntry): CardState | undefined {
    const card = entry.card;
    if (!card?.announced || !card.type) return undefined;
    return { atr: card.atr.toString('hex').toUpperCase(), type: card.type, label: describeCardType(card.type) };
  }

  /** NoService, or NoReader when no reader (or none of that name) is connected. */
  private candidates(selector: Pick<CardSelector, 'reader'>): ReaderEntry[] {
    if (!this.serviceAvailable) {
      throw new CardBridgeError('NoService', 'The smart-card service (pcscd) is not running', {
        hint: 'Start pcscd (e.g. "systemctl start pcscd.socket") and try again.',
      });
    }
    let candidates = [...this.entries.values()];
    if (selector.reader !== undefined) {
      candidates = candidates.filter((e) => e.name === selector.reader);
      if (candidates.length === 0) throw new CardBridgeError('NoReader', `No reader named "${selector.reader}"`, { reader: selector.reader });
    }
    if (candidates.length === 0) throw new CardBridgeError('NoReader', 'No card reader is connected', { hint: 'Plug in a card reader.' });
    return candidates;
  }

  private async choose(selector: CardSelector): Promise<ReaderEntry> {
    const candidates = this.candidates(selector);
    await Promise.all(candidates.map((e) => e.card?.recognised));
    const withCard = candidates.filter((e) => e.card);
    if (withCard.length === 0) throw noCard(selector.kind);
    if (!selector.kind) return withCard[0]!;
    const match = withCard.find((e) => e.card?.type?.kind === selector.kind);
    if (!match) {
      const seen = withCard.map((e) => e.card?.type?.kind ?? 'unknown').join(', ');
      throw new CardBridgeError('WrongCard', `The inserted card is not ${describeKind(selector.kind)} (found: ${seen})`, {
        hint: `Insert ${describeKind(selector.kind)}.`,
      });
    }
    return match;
  }

  private async connectWithRetry(reader: string, exclusive: boolean): Promise<Connection> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.connect(reader, exclusive);
      } catch (e) {
        const error = asCardBridgeError(e);
        const delay = this.sharingRetryDelaysMs[attempt];
        if (error.code !== 'SharingViolation') throw error;
        if (delay === undefined) {
          throw new CardBridgeError('Busy', `Another program is using the card in "${reader}"`, {
            reader,
            hint: 'Close other programs that use the card (e.g. a vendor agent) and try again.',
            cause: e,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

function noCard(kind: CardSelector['kind']): CardBridgeError {
  return new CardBridgeError('NoCard', 'No card is inserted', { hint: kind ? `Insert ${describeKind(kind)}.` : 'Insert the card into the reader.' });
}
