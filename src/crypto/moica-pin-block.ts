import { DES_BLOCK_SIZE, pkcs7Pad, tdesCbcEncrypt, tdesCbcMac } from './des.js';
import { invalidInput, requireBytes } from './bytes.js';

/** Generation-1 protected-VERIFY key used by most MOICA cards (two-key 3DES, K1 = first 8 bytes). */
export const MOICA_GEN1_PIN_KEY = 'CHTTL8f0HiCardV2';
/** The key of another card batch; the card answers 6A 88 to a cryptogram made with the wrong one. */
export const MOICA_GEN1_PIN_KEY_ALT = 'TLETC812HiCOSV22';

/** Both card generations carry the PIN as ASCII padded with FF to this length. */
export const MOICA_PIN_BUFFER_LENGTH = 10;

export interface MoicaProtectedPinBlock {
  /** ASCII PIN padded with FF to 10 bytes. Holds the PIN: wipe it (`fill(0)`) after use. */
  pinbuf: Buffer;
  /** Last block of 3DES-CBC(K, IV, PKCS#7(pinbuf)). */
  mac: Buffer;
  /** 3DES-CBC(K, IV, PKCS#7(pinbuf ‖ mac)), 24 bytes; the card receives IV ‖ cryptogram. */
  cryptogram: Buffer;
}

/**
 * The card's PIN buffer. Only the format is enforced here (printable ASCII that fits in 10
 * bytes); the 6–8 digit product rule is the caller's, which reports it as 'PinLength' before a
 * card is ever touched.
 */
export function moicaPinBuffer(pin: string): Buffer {
  if (typeof pin !== 'string' || pin.length === 0 || pin.length > MOICA_PIN_BUFFER_LENGTH) {
    throw invalidInput(`PIN must be 1..${MOICA_PIN_BUFFER_LENGTH} characters`);
  }
  // A 0xFF byte inside the PIN would be indistinguishable from padding, and non-ASCII would
  // change length when encoded, so only printable ASCII is accepted.
  if (!/^[\x20-\x7e]+$/.test(pin)) throw invalidInput('PIN must be printable ASCII');
  const buf = Buffer.alloc(MOICA_PIN_BUFFER_LENGTH, 0xff);
  buf.write(pin, 'latin1');
  return buf;
}

function pinKeyBytes(key: string | Uint8Array): Buffer {
  if (typeof key === 'string') {
    if (!/^[\x20-\x7e]{16}$/.test(key)) throw invalidInput('PIN key must be 16 printable ASCII characters');
    return Buffer.from(key, 'latin1');
  }
  return requireBytes('PIN key', key, 16);
}

/**
 * Builds the generation-1 protected VERIFY cryptogram (spec section 2, "PIN verification").
 * The IV must be fresh random bytes per attempt; it is a parameter so the function stays pure
 * and testable. Builds no APDU: the card layer sends `8C 20 00 01 20 ‖ IV ‖ cryptogram`.
 */
export function moicaProtectedPinBlock(
  pin: string,
  iv: Uint8Array,
  key: string | Uint8Array = MOICA_GEN1_PIN_KEY,
): MoicaProtectedPinBlock {
  const ivBytes = requireBytes('IV', iv, DES_BLOCK_SIZE);
  const k = pinKeyBytes(key);
  const pinbuf = moicaPinBuffer(pin);
  const paddedPin = pkcs7Pad(pinbuf);
  const mac = tdesCbcMac(k, paddedPin, ivBytes);
  const paddedAll = pkcs7Pad(Buffer.concat([pinbuf, mac]));
  const cryptogram = tdesCbcEncrypt(k, ivBytes, paddedAll);
  // Intermediate copies of the PIN are ours to wipe; the returned pinbuf is the caller's.
  paddedPin.fill(0);
  paddedAll.fill(0);
  return { pinbuf, mac, cryptogram };
}
