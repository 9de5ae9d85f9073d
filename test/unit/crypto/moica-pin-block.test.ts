import { pkcs7Unpad, tdesCbcDecrypt } from '../../../src/crypto/des.js';
import {
  MOICA_GEN1_PIN_KEY,
  MOICA_GEN1_PIN_KEY_ALT,
  moicaPinBuffer,
  moicaProtectedPinBlock,
} from '../../../src/crypto/moica-pin-block.js';
import { isCardBridgeError } from '../../../src/errors.js';
import { hex, vectors } from './vectors.js';

const VERIFY_HEADER = '8c20000120';

describe('MOICA gen-1 protected VERIFY block', () => {
  it.each(vectors.gen1_protected_verify.map((v) => [v.pin, v.iv, v]))(
    'vector: PIN %s, IV %s',
    (_pin, _iv, v) => {
      const block = moicaProtectedPinBlock(v.pin, hex(v.iv), v.key_ascii);
      expect(block.pinbuf.toString('hex')).toBe(v.pinbuf);
      expect(block.mac.toString('hex')).toBe(v.mac);
      expect(block.cryptogram).toHaveLength(24);
      expect(v.apdu.slice(0, 10)).toBe(VERIFY_HEADER);
      expect(Buffer.concat([hex(v.iv), block.cryptogram]).toString('hex')).toBe(v.apdu.slice(10));
    },
  );

  it.each(vectors.gen1_protected_verify_real_card.map((v) => [v.pin, v.iv, v]))(
    'real-card known answer: PIN %s, IV %s (default key)',
    (_pin, _iv, v) => {
      expect(v.key_ascii).toBe(MOICA_GEN1_PIN_KEY);
      const block = moicaProtectedPinBlock(v.pin, hex(v.iv));
      expect(block.cryptogram.toString('hex')).toBe(v.cryptogram);
      expect(VERIFY_HEADER + v.iv + block.cryptogram.toString('hex')).toBe(v.apdu);
    },
  );

  it('uses the spec key by default, and the known constants are the spec values', () => {
    expect(MOICA_GEN1_PIN_KEY).toBe('CHTTL8f0HiCardV2');
    expect(MOICA_GEN1_PIN_KEY_ALT).toBe('TLETC812HiCOSV22');
    const v = vectors.gen1_protected_verify[0]!;
    expect(moicaProtectedPinBlock(v.pin, hex(v.iv)).cryptogram).toEqual(
      moicaProtectedPinBlock(v.pin, hex(v.iv), Buffer.from(v.key_ascii, 'latin1')).cryptogram,
    );
  });

  it('the cryptogram decrypts to PKCS#7(pinbuf ‖ mac) under the other batch key too', () => {
    const iv = hex('a1a2a3a4a5a6a7a8');
    const block = moicaProtectedPinBlock('87654321', iv, MOICA_GEN1_PIN_KEY_ALT);
    const plain = pkcs7Unpad(tdesCbcDecrypt(Buffer.from(MOICA_GEN1_PIN_KEY_ALT, 'latin1'), iv, block.cryptogram));
    expect(plain).toEqual(Buffer.concat([block.pinbuf, block.mac]));
    expect(block.pinbuf.toString('hex')).toBe('3837363534333231ffff');
    expect(block.cryptogram).not.toEqual(moicaProtectedPinBlock('87654321', iv).cryptogram);
  });

  it('pads the PIN with FF to 10 bytes', () => {
    expect(moicaPinBuffer('000000').toString('hex')).toBe('303030303030ffffffff');
    expect(moicaPinBuffer('12345678').toString('hex')).toBe('3132333435363738ffff');
  });

  it.each([
    ['a PIN longer than 10 bytes', () => moicaProtectedPinBlock('12345678901', Buffer.alloc(8), MOICA_GEN1_PIN_KEY)],
    ['an empty PIN', () => moicaProtectedPinBlock('', Buffer.alloc(8))],
    ['a non-ASCII PIN', () => moicaProtectedPinBlock('12345\u00e9', Buffer.alloc(8))],
    ['a 7-byte IV', () => moicaProtectedPinBlock('123456', Buffer.alloc(7))],
    ['a 15-character key', () => moicaProtectedPinBlock('123456', Buffer.alloc(8), 'CHTTL8f0HiCardV')],
    ['an 8-byte key', () => moicaProtectedPinBlock('123456', Buffer.alloc(8), Buffer.alloc(8))],
  ])('rejects %s as InvalidInput', (_label, fn) => {
    let thrown: unknown;
    try {
      fn();
    } catch (e) {
      thrown = e;
    }
    expect(isCardBridgeError(thrown, 'InvalidInput')).toBe(true);
  });
});
