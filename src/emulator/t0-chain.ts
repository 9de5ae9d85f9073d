import { encodeResponse } from '../pcsc/apdu.js';

/**
 * What a T=0 card does with an answer it cannot send at once: `61 xx` ("xx bytes waiting"),
 * then the bytes through GET RESPONSE, at most 256 (or Le) at a time, `61 xx` again while more
 * remain. The virtual cards share it so their T=0 behaviour is the same everywhere.
 */
export class T0ResponseChain {
  private pending: Buffer | undefined;

  /** Any other command ends a pending chain, as on a real card. */
  clear(): void {
    this.pending = undefined;
  }

  /** Holds `data` and answers `61 xx` (or `90 00` when there is nothing to hand out). */
  start(data: Buffer): Buffer {
    if (data.length === 0) return encodeResponse({ data: Buffer.alloc(0), sw: 0x9000 });
    this.pending = data;
    return encodeResponse({ data: Buffer.alloc(0), sw: 0x6100 | (Math.min(data.length, 256) & 0xff) });
  }

  /** GET RESPONSE with the given Le; `69 85` when nothing is waiting. */
  getResponse(le: number | undefined): Buffer {
    const pending = this.pending;
    if (!pending) return encodeResponse({ data: Buffer.alloc(0), sw: 0x6985 });
    const chunk = pending.subarray(0, Math.min(le ?? 256, 256));
    const rest = pending.subarray(chunk.length);
    this.pending = rest.length > 0 ? rest : undefined;
    return encodeResponse({ data: chunk, sw: rest.length > 0 ? 0x6100 | (Math.min(rest.length, 256) & 0xff) : 0x9000 });
  }
}
