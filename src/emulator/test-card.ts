import { type CommandApdu, decodeCommand, encodeResponse } from '../pcsc/apdu.js';
import type { VirtualCard } from './virtual-card.js';
import { T0ResponseChain } from './t0-chain.js';

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
  private readonly chain = new T0ResponseChain();

  constructor(options: TestCardOptions = {}) {
    this.atr = options.atr ?? DEFAULT_ATR;
    this.aids = options.aids ?? [];
    this.dataObject = options.dataObject ?? Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    this.t0 = options.t0 ?? false;
  }

  reset(): void {
    this.resets++;
    this.chain.clear();
  }

  process(raw: Buffer): Buffer {
    this.received.push(Buffer.from(raw));
    let command: CommandApdu;
    try {
      command = decodeCommand(raw);
    } catch {
      return reply(Buffer.alloc(0), 0x6700);
    }
    if (command.ins === 0xc0) return this.chain.getResponse(command.le);
    this.chain.clear();
    switch (command.ins) {
      case 0xa4:
        if (command.p1 !== 0x04) return reply(Buffer.alloc(0), 0x6a86);
        return reply(Buffer.alloc(0), this.aids.some((aid) => command.data && aid.equals(command.data)) ? 0x9000 : 0x6a82);
      case 0xca:
        return this.answerCase2(command, this.dataObject);
      case 0xee: {
        const data = Buffer.from(command.data ?? []);
        if (this.t0) return this.chain.start(data);
        return reply(data.subarray(0, command.le ?? data.length), 0x9000);
      }
      default:
        return reply(Buffer.alloc(0), 0x6d00);
    }
  }

  private answerCase2(command: CommandApdu, data: Buffer): Buffer {
    if (!this.t0) return reply(data.subarray(0, command.le ?? 0), 0x9000);
    if (data.length > 256) return this.chain.start(data);
    if (command.le !== data.length) return reply(Buffer.alloc(0), 0x6c00 | (data.length & 0xff));
    return reply(data, 0x9000);
  }
}
