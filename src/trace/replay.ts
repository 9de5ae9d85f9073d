import { EventEmitter } from 'node:events';
import { CardBridgeError } from '../errors.js';
import { type CommandApdu, type ResponseApdu, encodeCommand, parseResponse } from '../pcsc/apdu.js';
import { describeCardType } from '../cards/index.js';
import type { CardTransport } from '../pcsc/transport.js';
import type { CardLocation, CardRequest, CardSelector, CardSession, ReaderRegistry, ReaderState } from '../readers/types.js';
import { type ApduTrace, type BytePattern, type TraceSession, parseHex, parsePattern, patternToHex } from './trace-file.js';

/**
 * Plays a recorded trace back to the drivers: each command they send must be the next one in
 * the trace (bytes the recorder removed match anything of the same length), and gets the
 * recorded answer. The first command that differs stops the replay with a message naming the
 * step and both commands; the error is also kept so a test can assert on it even when a driver
 * swallows it.
 */

const INS_INITIALIZE_UPDATE = 0x50;

export class TraceDivergence extends CardBridgeError {
  constructor(message: string) {
    super('ProtocolError', message);
    this.name = 'TraceDivergence';
  }
}

function matches(pattern: BytePattern, actual: Buffer): boolean {
  return pattern.length === actual.length && pattern.every((b, i) => b === null || b === actual[i]);
}

function firstDifference(pattern: BytePattern, actual: Buffer): number {
  const n = Math.min(pattern.length, actual.length);
  for (let i = 0; i < n; i++) if (pattern[i] !== null && pattern[i] !== actual[i]) return i;
  return n;
}

/** Replays the exchanges of one recorded session. */
export class ReplayTransport implements CardTransport {
  #next = 0;
  #divergence: TraceDivergence | undefined;

  constructor(
    readonly session: TraceSession,
    /** Names the session in messages, e.g. "session 2 of moica-sign.json". */
    private readonly label = 'the trace',
  ) {}

  /** The first divergence seen, if any. */
  get divergence(): TraceDivergence | undefined {
    return this.#divergence;
  }

  async transmit(command: CommandApdu): Promise<ResponseApdu> {
    if (this.#divergence) throw this.#divergence;
    const actual = encodeCommand(command);
    const step = this.#next + 1;
    const exchange = this.session.exchanges[this.#next];
    if (!exchange) {
      throw this.diverge(`Replay of ${this.label}: step ${step}: the driver sent ${patternToHex([...actual], ' ')} but the trace ends after ${this.session.exchanges.length} commands`);
    }
    const expected = parsePattern(exchange.command, `${this.label} step ${step}`);
    if (!matches(expected, actual)) {
      const at = firstDifference(expected, actual);
      throw this.diverge(
        `Replay of ${this.label}: step ${step} differs (first at byte ${at}${expected.length === actual.length ? '' : `, length ${actual.length} instead of ${expected.length}`}):\n` +
          `  expected ${patternToHex(expected, ' ')}\n` +
          `  actual   ${patternToHex([...actual], ' ')}`,
      );
    }
    this.#next++;
    if (exchange.response === undefined) throw new CardBridgeError('TransportError', `Replayed failure: ${exchange.error ?? 'no answer'}`);
    return parseResponse(parseHex(exchange.response, `${this.label} step ${step} response`));
  }

  /** Throws the divergence, or names the first recorded command the driver never sent. */
  assertComplete(): void {
    if (this.#divergence) throw this.#divergence;
    const missing = this.session.exchanges[this.#next];
    if (missing) {
      throw new TraceDivergence(
        `Replay of ${this.label}: the driver stopped after ${this.#next} of ${this.session.exchanges.length} commands; step ${this.#next + 1} expected ${patternToHex(parsePattern(missing.command, 'command'), ' ')}`,
      );
    }
  }

  private diverge(message: string): TraceDivergence {
    this.#divergence = new TraceDivergence(message);
    return this.#divergence;
  }
}

/**
 * A registry holding the trace's card: each `withCard` replays the next recorded session, so
 * the real services run unchanged against a recording.
 */
export class ReplayRegistry extends EventEmitter implements ReaderRegistry {
  readonly transports: ReplayTransport[];
  readonly #label: string;
  #next = 0;
  /** The host challenges of the recording, for `random`. */
  readonly #hostChallenges: Buffer[] = [];

  constructor(
    readonly trace: ApduTrace,
    label = `trace "${trace.operation}"`,
  ) {
    super();
    this.#label = label;
    if (trace.sessions.length === 0) throw new CardBridgeError('InvalidInput', `${label} has no card session to replay`);
    this.transports = trace.sessions.map((s, i) => new ReplayTransport(s, `${label}, session ${i + 1}`));
    for (const session of trace.sessions) {
      for (const exchange of session.exchanges) {
        const command = parsePattern(exchange.command, 'command');
        const lc = command[4];
        if (command[1] !== INS_INITIALIZE_UPDATE || lc === null || lc === undefined || command.length < 5 + lc) continue;
        const data = command.slice(5, 5 + lc);
        if (data.every((b) => b !== null)) this.#hostChallenges.push(Buffer.from(data as number[]));
      }
    }
  }

  readonly serviceAvailable = true;

  async start(): Promise<void> {
    // Nothing to start: the trace is the reader and the card.
  }

  async stop(): Promise<void> {
    // Nothing to release.
  }

  readers(): ReaderState[] {
    const first = this.trace.sessions[0]!;
    return [{ name: first.reader, card: { atr: first.atr.toUpperCase(), type: first.cardType, label: describeCardType(first.cardType) } }];
  }

  async locate(selector: CardSelector): Promise<CardLocation> {
    const [reader] = this.readers();
    if (selector.kind !== undefined && selector.kind !== reader!.card!.type.kind) {
      throw new TraceDivergence(`Replay of ${this.#label}: the service looks for a ${selector.kind} card but the trace holds ${reader!.card!.type.kind}`);
    }
    return { reader: reader!.name, card: reader!.card! };
  }

  locateReaders(): ReaderState[] {
    return this.readers();
  }

  /** One insertion for the whole replay: what the card answered once is remembered, as the daemon does. */
  readonly #memory = new Map<string, Promise<unknown>>();

  async withCard<T>(selector: CardRequest, operation: (session: CardSession) => Promise<T>): Promise<T> {
    const transport = this.transports[this.#next];
    if (!transport) throw new TraceDivergence(`Replay of ${this.#label}: the service opened session ${this.#next + 1} but the trace has ${this.transports.length}`);
    this.#next++;
    const recorded = transport.session;
    if (selector.kind !== undefined && selector.kind !== recorded.cardType.kind) {
      throw new TraceDivergence(`Replay of ${this.#label}: session ${this.#next} wants a ${selector.kind} card but the trace holds ${recorded.cardType.kind}`);
    }
    return operation({
      reader: recorded.reader,
      atr: parseHex(recorded.atr, 'ATR'),
      cardType: recorded.cardType,
      exclusive: selector.exclusive ?? false,
      transmit: (command) => transport.transmit(command),
      remember: <V>(key: string, read: () => Promise<V>): Promise<V> => {
        let value = this.#memory.get(key) as Promise<V> | undefined;
        if (!value) {
          value = read();
          this.#memory.set(key, value);
          value.catch(() => this.#memory.delete(key)); // a failed read is not remembered
        }
        return value;
      },
    });
  }

  /**
   * A random source for the drivers (MoicaDriverOptions.random). SCP03's card cryptogram
   * depends on the host challenge, so a replayed driver must send the recorded one: this gives
   * back the data of the trace's INITIALIZE UPDATE commands in order, and zeros once they are
   * used up (gen 1's VERIFY IV, for one, is removed from the trace and matches anything).
   */
  readonly random = (length: number): Buffer => {
    const next = this.#hostChallenges[0];
    if (next && next.length === length) return Buffer.from(this.#hostChallenges.shift()!);
    return Buffer.alloc(length);
  };

  /** Every session replayed to its end, and no divergence anywhere. */
  assertComplete(): void {
    for (const t of this.transports) if (t.divergence) throw t.divergence;
    if (this.#next < this.transports.length) {
      throw new TraceDivergence(`Replay of ${this.#label}: the service used ${this.#next} of ${this.transports.length} sessions`);
    }
    for (const t of this.transports) t.assertComplete();
  }
}
