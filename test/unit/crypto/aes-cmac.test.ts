import { aesCmac, aesCmacSubkeys } from '../../../src/crypto/aes-cmac.js';
import { isCardBridgeError } from '../../../src/errors.js';
import { hex } from './vectors.js';

const RFC4493_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c');
const RFC4493_MESSAGE = hex(
  '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
    '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710',
);

describe('AES-CMAC', () => {
  it('derives the RFC 4493 subkeys', () => {
    const { k1, k2 } = aesCmacSubkeys(RFC4493_KEY);
    expect(k1.toString('hex')).toBe('fbeed618357133667c85e08f7236a8de');
    expect(k2.toString('hex')).toBe('f7ddac306ae266ccf90bc11ee46d513b');
  });

  // RFC 4493 section 4, examples 1-4.
  it.each([
    [0, 'bb1d6929e95937287fa37d129b756746'],
    [16, '070a16b46b4d4144f79bdd9dd04a287c'],
    [40, 'dfa66747de9ae63030ca32611497c827'],
    [64, '51f0bebf7e3b9d92fc49741779363cfe'],
  ])('RFC 4493 AES-128 example, message length %i', (length, tag) => {
    expect(aesCmac(RFC4493_KEY, RFC4493_MESSAGE.subarray(0, length)).toString('hex')).toBe(tag);
  });

  // NIST SP 800-38B appendix D (AES-192 and AES-256 examples 1 and 2).
  it.each([
    ['8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b', 0, 'd17ddf46adaacde531cac483de7a9367'],
    ['8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b', 16, '9e99a7bf31e710900662f65e617c5184'],
    ['603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', 0, '028962f61b7bf89efc6b551f4667d983'],
    ['603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4', 16, '28a7023f452e8f82bd4bf28d8c37c35c'],
  ])('SP 800-38B key %s, message length %i', (key, length, tag) => {
    expect(aesCmac(hex(key), RFC4493_MESSAGE.subarray(0, length)).toString('hex')).toBe(tag);
  });

  it('accepts a Uint8Array view into a larger buffer', () => {
    const backing = Buffer.concat([Buffer.alloc(3, 0xee), RFC4493_MESSAGE.subarray(0, 16)]);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 16);
    expect(aesCmac(RFC4493_KEY, view).toString('hex')).toBe('070a16b46b4d4144f79bdd9dd04a287c');
  });

  it('rejects keys that are not AES key sizes', () => {
    let thrown: unknown;
    try {
      aesCmac(Buffer.alloc(15), Buffer.alloc(0));
    } catch (e) {
      thrown = e;
    }
    expect(isCardBridgeError(thrown, 'InvalidInput')).toBe(true);
  });
});
