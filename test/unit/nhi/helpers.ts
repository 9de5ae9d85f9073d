import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import type { MockReaderRegistry } from '../../../src/readers/mock-registry.js';

/**
 * Wraps a card so that, once armed, it is pulled out of its reader when the Nth APDU arrives
 * (the APDU gets no answer, as when a card leaves the contacts mid-command).
 */
export class SelfRemovingCard implements VirtualCard {
  readonly atr: Buffer;
  private remaining: number | undefined;

  constructor(
    private readonly inner: VirtualCard,
    private readonly registry: MockReaderRegistry,
    private readonly reader: string,
  ) {
    this.atr = inner.atr;
  }

  /** Remove the card on the nth APDU from now (1 = the next one). */
  arm(nth: number): void {
    this.remaining = nth;
  }

  reset(): void {
    this.inner.reset?.();
  }

  async process(command: Buffer): Promise<Buffer> {
    if (this.remaining !== undefined && --this.remaining === 0) {
      this.registry.removeCard(this.reader);
      throw new Error('card left the contacts');
    }
    return Buffer.from(await this.inner.process(command));
  }
}

/** Wraps a card and answers chosen commands with a fixed status word. */
export function failingCard(inner: VirtualCard, fail: (command: Buffer) => number | undefined): VirtualCard {
  return {
    atr: inner.atr,
    reset: () => inner.reset?.(),
    process: async (command) => {
      const sw = fail(command);
      if (sw !== undefined) return Buffer.from([sw >> 8, sw & 0xff]);
      return Buffer.from(await inner.process(command));
    },
  };
}

export async function caught<E = Error>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (e) {
    return e as E;
  }
  throw new Error('expected the promise to reject');
}

/**
 * What the driver must decode from the default virtual card (NHI_TEST_IDENTITY), written out
 * literally so the tests do not derive their expectation from the fixture they check.
 */
export const EXPECTED_TEST_BASIC_DATA = {
      cardNumber: '000011112222',
      name: '王小明',
      nameComplete: true,
      idNumber: 'A123456789',
      birthDate: '1985-03-15',
      birthDateRoc: '0740315',
      sex: 'M',
      issueDate: '2015-06-01',
      issueDateRoc: '1040601',
} as const;
