import { createHash, randomBytes } from 'node:crypto';
import iconv from 'iconv-lite';
import { desEcbEncrypt, pkcs7Pad, tdesEcbEncrypt } from '../../crypto/des.js';
import { CardBridgeError } from '../../errors.js';

/**
 * The official agent's two password-flow "encryption" functions (specs/nhi-agent-protocols.md,
 * section C). Their keys are fixed constants and today's date: this is obfuscation that the
 * receiving NHI/government server undoes with the same constants, not protection, and the
 * bridge reproduces it only because those servers expect exactly these bytes.
 *
 * Encryption only: the matching decryption belongs to relying sites and lives in the test-only
 * emulator (`src/emulator/nhi/relying-site.ts`), never in the bridge.
 */

/** Appended to SHA-1(card id ‖ date) to make EnCrypt's 24-byte three-key 3DES key K1. */
export const ENCRYPT_K1_SUFFIX = Buffer.from([0x27, 0x06, 0x58, 0x66]);
/** EnCrypt's outer 3DES key: these 24 ASCII characters. */
export const ENCRYPT_L_KEY1 = Buffer.from('272526864181565247277656', 'ascii');
/** EnCrypt accepts passwords of 6–12 ASCII characters (else 8009). */
export const ENCRYPT_PASSWORD_PATTERN = /^[\x20-\x7e]{6,12}$/;

/** Where random bytes come from (tests pass a deterministic source). */
export type RandomSource = (length: number) => Buffer;

/** Taiwan has used UTC+8 without daylight saving since 1980, so no time-zone database is needed. */
const TAIPEI_OFFSET_MS = 8 * 60 * 60 * 1000;

/** The calendar date in Taiwan (Asia/Taipei) at `now`, as the receiving server sees its own date. */
export function taipeiDate(now: Date): { year: string; month: string; day: string } {
  const shifted = new Date(now.getTime() + TAIPEI_OFFSET_MS);
  return {
    year: String(shifted.getUTCFullYear()).padStart(4, '0'),
    month: String(shifted.getUTCMonth() + 1).padStart(2, '0'),
    day: String(shifted.getUTCDate()).padStart(2, '0'),
  };
}

/**
 * pad78: cut `data` into 7-byte chunks (the last one zero-padded to 7) and append one random
 * byte to each, giving whole 8-byte blocks.
 */
export function pad78(data: Uint8Array, random: RandomSource = randomBytes): Buffer {
  const chunks = Math.max(1, Math.ceil(data.length / 7));
  const out = Buffer.alloc(chunks * 8);
  const filler = random(chunks);
  for (let i = 0; i < chunks; i++) {
    Buffer.from(data.subarray(i * 7, i * 7 + 7)).copy(out, i * 8);
    out[i * 8 + 7] = filler[i] ?? 0;
  }
  return out;
}

/** EnCrypt's only check: 6–12 ASCII characters (`PinLength`, official code 8009). */
export function checkEnCryptPassword(password: unknown): asserts password is string {
  if (typeof password !== 'string' || !ENCRYPT_PASSWORD_PATTERN.test(password)) {
    throw new CardBridgeError('PinLength', 'The password must be 6 to 12 ASCII characters');
  }
}

/**
 * `EnCrypt?Pwd=` / `EncryptPwd`: K1 = SHA-1(ASCII(card id ‖ YYYYMMDD)) ‖ 27 06 58 66;
 * c1 = 3DES-ECB(K1, PKCS#5(pwd)); result = 3DES-ECB(L_KEY1, pad78(c1)), as upper-case hex.
 */
export function nhiEnCrypt(password: string, cardId: Uint8Array, now: Date, random: RandomSource = randomBytes): string {
  checkEnCryptPassword(password);
  const { year, month, day } = taipeiDate(now);
  const seed = Buffer.concat([Buffer.from(cardId), Buffer.from(`${year}${month}${day}`, 'ascii')]);
  const k1 = Buffer.concat([createHash('sha1').update(seed).digest(), ENCRYPT_K1_SUFFIX]);
  try {
    const c1 = tdesEcbEncrypt(k1, pkcs7Pad(Buffer.from(password, 'ascii')));
    return tdesEcbEncrypt(ENCRYPT_L_KEY1, pad78(c1, random)).toString('hex').toUpperCase();
  } finally {
    k1.fill(0);
  }
}

/**
 * `SecureGetBasicWithParam?Pwd=` / `GetEncryptBasic`: the GetBasic CSV in Big5-HKSCS, pad78,
 * single DES with the key ASCII `MMDDYYYY` (Taiwan's date), upper-case hex. The password takes
 * no part, as in the published implementation. A character Big5-HKSCS cannot hold (U+FFFD for
 * an undecodable name character) becomes `?`.
 */
export function nhiSecureBasic(basicCsv: string, now: Date, random: RandomSource = randomBytes): string {
  const { year, month, day } = taipeiDate(now);
  const key = Buffer.from(`${month}${day}${year}`, 'ascii');
  return desEcbEncrypt(key, pad78(iconv.encode(basicCsv, 'big5hkscs'), random)).toString('hex').toUpperCase();
}
