/**
 * A minimal DER reader: tag, definite length, position. Enough to walk a CRL's outer structure
 * and its revoked-certificate list without building an object per entry (pkijs' schema matching
 * gives up on lists of a few thousand entries; MOICA's complete CRL has about 412 000).
 */

export interface Tlv {
  /** The identifier octet (single-octet tags only: X.509 needs no others). */
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the value. */
  end: number;
}

export class DerError extends Error {}

export function readTlv(der: Uint8Array, start: number, limit: number = der.length): Tlv {
  if (start + 2 > limit) throw new DerError(`truncated DER at ${start}`);
  const tag = der[start]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-octet tag at ${start}`);
  const first = der[start + 1]!;
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = start + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new DerError(`unsupported length form at ${start}`);
    if (start + 2 + count > limit) throw new DerError(`truncated DER length at ${start}`);
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + 2 + i]!;
    contentStart = start + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError(`DER value at ${start} runs past its container`);
  return { tag, start, contentStart, end };
}

/** The values inside a constructed value, which must fill it exactly. */
export function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** DER length octets for `n`. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
