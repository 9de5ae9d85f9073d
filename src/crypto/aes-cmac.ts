import { AES_BLOCK_SIZE, aesCbcEncrypt, aesEcbEncrypt } from './aes.js';
import { asBuffer, requireBytes, xor } from './bytes.js';

/** The constant R_128 of RFC 4493: x^128 = x^7 + x^2 + x + 1 in GF(2^128). */
const RB = 0x87;

/** Multiplication by x in GF(2^128); the reduction is masked so it does not branch on key material. */
function doubleBlock(block: Uint8Array): Buffer {
  const out = Buffer.alloc(AES_BLOCK_SIZE);
  for (let i = 0; i < AES_BLOCK_SIZE; i++) {
    const next = i + 1 < AES_BLOCK_SIZE ? (block[i + 1] as number) : 0;
    out[i] = (((block[i] as number) << 1) | (next >>> 7)) & 0xff;
  }
  out[AES_BLOCK_SIZE - 1] = (out[AES_BLOCK_SIZE - 1] as number) ^ (RB & -((block[0] as number) >>> 7));
  return out;
}

export interface AesCmacSubkeys {
  k1: Buffer;
  k2: Buffer;
}

/** RFC 4493 section 2.3. */
export function aesCmacSubkeys(key: Uint8Array): AesCmacSubkeys {
  const l = aesEcbEncrypt(key, Buffer.alloc(AES_BLOCK_SIZE));
  const k1 = doubleBlock(l);
  const k2 = doubleBlock(k1);
  l.fill(0);
  return { k1, k2 };
}

/** AES-CMAC (RFC 4493, NIST SP 800-38B) with a 16-, 24- or 32-byte key; returns the full 16-byte tag. */
export function aesCmac(key: Uint8Array, message: Uint8Array): Buffer {
  requireBytes('AES-CMAC key', key, 16, 24, 32);
  const msg = requireBytes('AES-CMAC message', message);
  const { k1, k2 } = aesCmacSubkeys(key);
  const blocks = Math.max(1, Math.ceil(msg.length / AES_BLOCK_SIZE));
  const complete = msg.length > 0 && msg.length % AES_BLOCK_SIZE === 0;
  const lastStart = (blocks - 1) * AES_BLOCK_SIZE;
  const last = Buffer.alloc(AES_BLOCK_SIZE);
  msg.copy(last, 0, lastStart);
  if (!complete) last[msg.length - lastStart] = 0x80;
  const lastMasked = xor(last, complete ? k1 : k2);
  // CMAC is CBC-MAC with a zero IV once the last block is masked, so one CBC pass does the work.
  const chain = Buffer.concat([asBuffer(msg.subarray(0, lastStart)), lastMasked]);
  const encrypted = aesCbcEncrypt(key, Buffer.alloc(AES_BLOCK_SIZE), chain);
  const tag = Buffer.from(encrypted.subarray(encrypted.length - AES_BLOCK_SIZE));
  for (const b of [k1, k2, last, lastMasked, chain, encrypted]) b.fill(0);
  return tag;
}
