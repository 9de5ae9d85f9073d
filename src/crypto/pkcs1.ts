import * as asn1js from 'asn1js';
import { invalidInput, requireBytes } from './bytes.js';
import { CardBridgeError } from '../errors.js';

/**
 * PKCS#1 v1.5 blocks for a card that only does raw RSA: the host builds the whole input block
 * to sign and strips the padding of what the card decrypts.
 *
 * DigestInfo is built with asn1js rather than from the well-known DER prefixes, so the OIDs
 * below are the only hash-specific data; the test pins the SHA-256 result to the spec's prefix.
 */

export type Pkcs1HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const HASHES: Record<Pkcs1HashName, { oid: string; length: number }> = {
  sha1: { oid: '1.3.14.3.2.26', length: 20 },
  sha256: { oid: '2.16.840.1.101.3.4.2.1', length: 32 },
  sha384: { oid: '2.16.840.1.101.3.4.2.2', length: 48 },
  sha512: { oid: '2.16.840.1.101.3.4.2.3', length: 64 },
};

/** Padding string length floor of RFC 8017 (at least 8 bytes), plus 00 BT ... 00. */
const MIN_PADDING_STRING = 8;
const PKCS1_OVERHEAD = MIN_PADDING_STRING + 3;

export function pkcs1DigestLength(hash: Pkcs1HashName): number {
  return hashInfo(hash).length;
}

function hashInfo(hash: Pkcs1HashName): { oid: string; length: number } {
  if (!Object.prototype.hasOwnProperty.call(HASHES, hash)) {
    throw invalidInput(`Unsupported hash '${String(hash)}'; use sha1, sha256, sha384 or sha512`);
  }
  return HASHES[hash];
}

/** DER DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING digest }. */
export function pkcs1DigestInfo(hash: Pkcs1HashName, digest: Uint8Array): Buffer {
  const { oid, length } = hashInfo(hash);
  const d = requireBytes('digest', digest);
  if (d.length !== length) throw invalidInput(`A ${hash} digest is ${length} bytes, got ${d.length}`);
  const info = new asn1js.Sequence({
    value: [
      // Explicit NULL parameters: what OpenSSL and the card's relying parties emit and expect.
      new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), new asn1js.Null()] }),
      new asn1js.OctetString({ valueHex: new Uint8Array(d) }),
    ],
  });
  return Buffer.from(info.toBER(false));
}

function checkModulusLength(modulusLength: number): void {
  if (!Number.isInteger(modulusLength) || modulusLength < 64 || modulusLength > 2048) {
    throw invalidInput(`RSA modulus length must be 64..2048 bytes, got ${modulusLength}`);
  }
}

/**
 * Type-1 padding around any payload: `00 01 FF..FF 00 ‖ payload`, exactly `modulusLength` bytes,
 * with at least 8 bytes of FF (RFC 8017 §9.2).
 */
export function pkcs1Type1Pad(modulusLength: number, payload: Uint8Array): Buffer {
  checkModulusLength(modulusLength);
  const t = requireBytes('payload', payload);
  if (modulusLength < t.length + PKCS1_OVERHEAD) {
    throw invalidInput(`A ${modulusLength}-byte modulus is too short for ${t.length} bytes of payload`);
  }
  const block = Buffer.alloc(modulusLength, 0xff);
  block[0] = 0x00;
  block[1] = 0x01;
  block[modulusLength - t.length - 1] = 0x00;
  t.copy(block, modulusLength - t.length);
  return block;
}

/** `00 01 FF..FF 00 ‖ DigestInfo`, exactly `modulusLength` bytes (256 for the card's RSA-2048). */
export function pkcs1v15SignatureBlock(modulusLength: number, hash: Pkcs1HashName, digest: Uint8Array): Buffer {
  checkModulusLength(modulusLength);
  const t = pkcs1DigestInfo(hash, digest);
  if (modulusLength < t.length + PKCS1_OVERHEAD) {
    throw invalidInput(`A ${modulusLength}-byte modulus is too short for a ${hash} DigestInfo`);
  }
  return pkcs1Type1Pad(modulusLength, t);
}

/**
 * Strips PKCS#1 v1.5 type-2 (encryption) padding from a raw RSA decryption result.
 *
 * Constant-time by construction: every byte is visited, validity is accumulated in a mask, and
 * every failure raises the same error, so neither timing nor message tells an attacker which
 * check failed (Bleichenbacher). JavaScript cannot promise what the JIT emits, so this is
 * best effort; callers must also keep the error generic all the way to the client.
 *
 * `modulusLength` guards against a card answer of the wrong size (lengths are public); a
 * shorter result with its leading zeros dropped must be left-padded by the caller first.
 */
export function pkcs1v15Type2Unpad(block: Uint8Array, modulusLength: number = block.length): Buffer {
  checkModulusLength(modulusLength);
  const em = requireBytes('RSA block', block, modulusLength);
  // Masks are 0 or -1 (all ones), so they combine with & and select with & / | without branching.
  let good = isZeroMask(em[0] as number) & isZeroMask((em[1] as number) ^ 0x02);
  let lookingForSeparator = -1;
  let separatorIndex = 0;
  for (let i = 2; i < em.length; i++) {
    const isSeparator = isZeroMask(em[i] as number) & lookingForSeparator;
    separatorIndex = (i & isSeparator) | (separatorIndex & ~isSeparator);
    lookingForSeparator &= ~isSeparator;
  }
  good &= ~lookingForSeparator;
  // The separator must follow at least 8 padding bytes: index >= 2 + 8.
  good &= ~negativeMask(separatorIndex - (2 + MIN_PADDING_STRING));
  if (good !== -1) throw new CardBridgeError('ProtocolError', 'Decryption failed');
  return Buffer.from(em.subarray(separatorIndex + 1));
}

/** -1 when x (0..255) is zero, else 0. */
function isZeroMask(x: number): number {
  return (x - 1) >> 31;
}

/** -1 when x < 0, else 0 (x within 32-bit signed range). */
function negativeMask(x: number): number {
  return x >> 31;
}
