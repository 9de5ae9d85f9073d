import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

/** The few parts of the pcsclite addon the floor measurement uses (as src/readers/pcsc-registry.ts does). */
interface ReaderHandle extends EventEmitter {
  name: string;
  SCARD_SHARE_SHARED: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_STATE_PRESENT: number;
  SCARD_LEAVE_CARD: number;
  connect(options: { share_mode: number; protocol: number }, cb: (err: unknown, protocol: number) => void): void;
  transmit(data: Buffer, resLen: number, protocol: number, cb: (err: unknown, response: Buffer) => void): void;
  disconnect(disposition: number, cb: (err: unknown) => void): void;
  close(): void;
}
interface Context extends EventEmitter {
  close(): void;
}

/** Epoch milliseconds, sub-millisecond, comparable with the card host's clock. */
export const wallNow = () => performance.timeOrigin + performance.now();

/**
 * Straight pcsclite, no cardbridge layer: the floor every cardbridge figure is compared with.
 * Also timestamps pcscd's card-presence reports, which is the floor of insert → event.
 */
export class RawPcsc {
  private readonly context: Context;
  private readonly readers = new Map<string, ReaderHandle>();
  private readonly present = new Map<string, boolean>();
  private readonly waiters: { reader: string; present: boolean; resolve: (at: number) => void }[] = [];

  constructor() {
    const factory = createRequire(import.meta.url)('pcsclite') as () => Context;
    this.context = factory();
    this.context.on('error', () => undefined);
    this.context.on('reader', (reader: ReaderHandle) => {
      this.readers.set(reader.name, reader);
      reader.on('error', () => undefined);
      reader.on('status', (status: { state: number }) => {
        const present = (status.state & reader.SCARD_STATE_PRESENT) !== 0;
        const at = wallNow();
        if (this.present.get(reader.name) === present) return;
        this.present.set(reader.name, present);
        for (const w of this.waiters.splice(0)) {
          if (w.reader === reader.name && w.present === present) w.resolve(at);
          else this.waiters.push(w);
        }
      });
    });
  }

  /** Resolves with the time pcscd reported the reader's card as present (or absent). */
  whenCard(reader: string, present: boolean, timeoutMs = 10_000): Promise<number> {
    if (this.present.get(reader) === present) return Promise.resolve(wallNow());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pcscd did not report ${reader} ${present ? 'with' : 'without'} a card`)), timeoutMs);
      this.waiters.push({
        reader,
        present,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
  }

  private reader(name: string): ReaderHandle {
    const reader = this.readers.get(name);
    if (!reader) throw new Error(`no reader ${name}`);
    return reader;
  }

  connect(name: string): Promise<number> {
    const reader = this.reader(name);
    return new Promise((resolve, reject) =>
      reader.connect({ share_mode: reader.SCARD_SHARE_SHARED, protocol: reader.SCARD_PROTOCOL_T0 | reader.SCARD_PROTOCOL_T1 }, (err, protocol) =>
        err ? reject(err) : resolve(protocol),
      ),
    );
  }

  transmit(name: string, protocol: number, apdu: Buffer): Promise<Buffer> {
    const reader = this.reader(name);
    return new Promise((resolve, reject) => reader.transmit(apdu, 65538, protocol, (err, response) => (err ? reject(err) : resolve(response))));
  }

  disconnect(name: string): Promise<void> {
    const reader = this.reader(name);
    return new Promise((resolve) => reader.disconnect(reader.SCARD_LEAVE_CARD, () => resolve()));
  }

  /**
   * Times `iterations` runs of the APDU sequence: on one open connection (`transmitOnly`),
   * and as SCardConnect + the sequence + SCardDisconnect (`withConnect`), which is the least
   * any per-request card operation costs.
   */
  async time(name: string, sequence: Buffer[], iterations: number): Promise<{ transmitOnly: number[]; withConnect: number[] }> {
    const transmitOnly: number[] = [];
    const withConnect: number[] = [];
    const protocol = await this.connect(name);
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      for (const apdu of sequence) await this.transmit(name, protocol, apdu);
      transmitOnly.push(performance.now() - start);
    }
    await this.disconnect(name);
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      const p = await this.connect(name);
      for (const apdu of sequence) await this.transmit(name, p, apdu);
      await this.disconnect(name);
      withConnect.push(performance.now() - start);
    }
    return { transmitOnly, withConnect };
  }

  close(): void {
    for (const reader of this.readers.values()) {
      try {
        reader.close();
      } catch {
        // already closed
      }
    }
    try {
      this.context.close();
    } catch {
      // already closed
    }
  }
}
