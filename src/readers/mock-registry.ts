import { CardBridgeError } from '../errors.js';
import type { VirtualCard } from '../emulator/virtual-card.js';
import { type Connection, RegistryBase, type RegistryOptions } from './registry-base.js';

interface MockSlot {
  card?: VirtualCard;
  exclusiveHolders: number;
  sharedHolders: number;
}

/**
 * Readers and cards that live in this process: the demo, relying-site developers' tests and
 * our own unit tests insert and remove virtual cards from code. It enforces the same sharing
 * rules as PC/SC so exclusive PIN operations behave as they will on a real reader.
 */
export class MockReaderRegistry extends RegistryBase {
  private readonly slots = new Map<string, MockSlot>();

  constructor(options: RegistryOptions = {}) {
    super(options);
  }

  get serviceAvailable(): boolean {
    return true;
  }

  async start(): Promise<void> {
    await this.settled();
  }

  async stop(): Promise<void> {
    // Nothing to release: the mock holds no system resources.
  }

  addReader(name: string): void {
    if (!this.slots.has(name)) this.slots.set(name, { exclusiveHolders: 0, sharedHolders: 0 });
    this.readerAdded(name);
  }

  removeReader(name: string): void {
    this.slots.delete(name);
    this.readerRemoved(name);
  }

  /** Inserts a card; resolves once it has been recognised and announced. */
  async insertCard(reader: string, card: VirtualCard): Promise<void> {
    const slot = this.slots.get(reader);
    if (!slot) throw new CardBridgeError('NoReader', `No mock reader named "${reader}"`, { reader });
    if (slot.card) this.removeCard(reader);
    slot.card = card;
    this.cardInserted(reader, card.atr);
    await this.settled();
  }

  removeCard(reader: string): void {
    const slot = this.slots.get(reader);
    if (!slot?.card) return;
    slot.card = undefined;
    this.cardRemoved(reader);
  }

  cardIn(reader: string): VirtualCard | undefined {
    return this.slots.get(reader)?.card;
  }

  /** Simulates another program holding the card exclusively (for Busy handling tests). */
  holdExclusively(reader: string): () => void {
    const slot = this.requireSlot(reader);
    slot.exclusiveHolders++;
    return () => {
      slot.exclusiveHolders--;
    };
  }

  protected async connect(reader: string, exclusive: boolean): Promise<Connection> {
    const slot = this.requireSlot(reader);
    const card = slot.card;
    if (!card) throw new CardBridgeError('NoCard', `No card in "${reader}"`, { reader });
    if (slot.exclusiveHolders > 0 || (exclusive && slot.sharedHolders > 0)) {
      throw new CardBridgeError('SharingViolation', `The card in "${reader}" is in use`, { reader });
    }
    if (exclusive) slot.exclusiveHolders++;
    else slot.sharedHolders++;
    let open = true;
    return {
      transmit: async (command) => {
        if (!open) throw new CardBridgeError('TransportError', 'Connection already closed');
        const removed = () => slot.card !== card || this.slots.get(reader) !== slot;
        const gone = () => new CardBridgeError('CardRemoved', `The card was removed from "${reader}"`, { reader });
        if (removed()) throw gone();
        const response = Buffer.from(await card.process(Buffer.from(command)));
        // A card pulled out while it was answering never delivers that answer.
        if (removed()) throw gone();
        return response;
      },
      close: async (reset) => {
        if (!open) return;
        open = false;
        if (exclusive) slot.exclusiveHolders--;
        else slot.sharedHolders--;
        if (reset && slot.card === card) card.reset?.();
      },
    };
  }

  private requireSlot(reader: string): MockSlot {
    const slot = this.slots.get(reader);
    if (!slot) throw new CardBridgeError('NoReader', `No mock reader named "${reader}"`, { reader });
    return slot;
  }
}
