import { type CommandApdu, decodeCommand, encodeResponse } from '../pcsc/apdu.js';
import type { VirtualCard } from './virtual-card.js';

export interface TestCardOptions {
  atr?: Buffer;
  /** AIDs that SELECT (00 A4 04 xx) accepts. */
  aids?: Buffer[];
  /** The data object returned by GET DATA 00 CA 00 00. */
  dataObject?: Buffer;
  /**
   * Behave as a T=0 card does: answer a case-4 command with `61 xx` and hand the data out
   * through GET RESPONSE, and answer a case-2 command whose Le is wrong with `6C xx`.
   */
  t0?: boolean;
}

const DEFAULT_ATR = Buffer.from('3B8880010000000000000000', 'hex');

function reply(data: Buffer, sw: number): Buffer {
  return encodeResponse({ data, sw });
}

/**
 * A small generic card for transport and reader tests: SELECT by AID, GET DATA (00 CA),
 * ECHO (00 EE: returns its data, case 4) and GET RESPONSE. It records every APDU it sees so
 * tests can prove what crossed the wire.
 */
export class GenericTestCard implements VirtualCard {
  readonly atr: Buffer;
  readonly received: Buffer[] = [];
  resets = 0;
  private readonly aids: Buffer[];
  private readonly dataObject: Buffer;
  private readonly t0: boolean;
  private pending: Buffer | undefined;

  constructor(options: TestCardOptions = {}) {
    this.atr = options.atr ?? DEFAULT_ATR;
    this.aids = options.aids ?? [];
    this.dataObject = options.dataObject ?? Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    this.t0 = options.t0 ?? false;
  }

  reset(): void {
    this.resets++;
    this.pending = undefined;
  }

  process(raw: Buffer): Buffer {
    this.received.push(Buffer.from(raw));
    let command: CommandApdu;
    try {
      command = decodeCommand(raw);
    } catch {
      return reply(Buffer.alloc(0), 0x6700);
    }
    if (command.ins === 0xc0) return this.getResponse(command);
    this.pending = undefined;
    switch (command.ins) {
      case 0xa4:
        if (command.p1 !== 0x04) return reply(Buffer.alloc(0), 0x6a86);
        return reply(Buffer.alloc(0), this.aids.some((aid) => command.data && aid.equals(command.data)) ? 0x9000 : 0x6a82);
      case 0xca:
        return this.answerCase2(command, this.dataObject);
      case 0xee: {
        const data = Buffer.from(command.data ?? []);
        if (this.t0) return this.startChain(data);
        return reply(data.subarray(0, command.le ?? data.length), 0x9000);
      }
      default:
        return reply(Buffer.alloc(0), 0x6d00);
    }
  }

  private answerCase2(command: CommandApdu, data: Buffer): Buffer {
    if (!this.t0) return reply(data.subarray(0, command.le ?? 0), 0x9000);
    if (data.length > 256) return this.startChain(data);
    if (command.le !== data.length) return reply(Buffer.alloc(0), 0x6c00 | (data.length & 0xff));
    return reply(data, 0x9000);
  }

  private startChain(data: Buffer): Buffer {
    if (data.length === 0) return reply(Buffer.alloc(0), 0x9000);
    this.pending = data;
    return reply(Buffer.alloc(0), 0x6100 | (Math.min(data.length, 256) & 0xff));
  }

  private getResponse(command: CommandApdu): Buffer {
    const pending = this.pending;
    if (!pending) return reply(Buffer.alloc(0), 0x6985);
    const chunk = pending.subarray(0, Math.min(command.le ?? 256, 256));
    const rest = pending.subarray(chunk.length);
    this.pending = rest.length > 0 ? rest : undefined;
    return reply(chunk, rest.length > 0 ? 0x6100 | (Math.min(rest.length, 256) & 0xff) : 0x9000);
  }
}
