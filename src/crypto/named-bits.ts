import * as asn1js from 'asn1js';

/**
 * ASN.1 named bit strings (X.509 KeyUsage, PKCS#15 KeyUsageFlags and AccessFlags): bit 0 is
 * the most significant bit of the first octet. DER drops trailing zero bits, so the encoder
 * computes the unused-bit count from the highest bit set.
 */
export function encodeNamedBits(bits: Iterable<number>): asn1js.BitString {
  const set = [...new Set(bits)];
  for (const bit of set) {
    if (!Number.isInteger(bit) || bit < 0 || bit > 255) throw new RangeError(`Bit number out of range: ${bit}`);
  }
  if (set.length === 0) return new asn1js.BitString({ valueHex: new Uint8Array(0), unusedBits: 0 });
  const highest = Math.max(...set);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const bit of set) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return new asn1js.BitString({ valueHex: bytes, unusedBits: 7 - (highest & 7) });
}

/** The numbers of the bits set in a decoded BIT STRING (ignoring the unused bits). */
export function decodeNamedBits(bitString: asn1js.BitString): Set<number> {
  const bytes = bitString.valueBlock.valueHexView;
  const unused = bitString.valueBlock.unusedBits;
  const total = bytes.length * 8 - unused;
  const out = new Set<number>();
  for (let bit = 0; bit < total; bit++) {
    if ((bytes[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) out.add(bit);
  }
  return out;
}
