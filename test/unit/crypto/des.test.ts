import {
  desEcbDecrypt,
  desEcbEncrypt,
  iso9797M2Pad,
  pkcs7Pad,
  pkcs7Unpad,
  singleDesBackend,
  tdesCbcDecrypt,
  tdesCbcEncrypt,
  tdesCbcMac,
  tdesEcbDecrypt,
  tdesEcbEncrypt,
} from '../../../src/crypto/des.js';
import { isCardBridgeError } from '../../../src/errors.js';
import { hex } from './vectors.js';

// NIST SP 800-67 rev. 1, appendix B (three-key TDEA, ECB); "qufck" is the document's own spelling.
const SP800_67 = {
  key: hex('0123456789abcdef23456789abcdef01456789abcdef0123'),
  plain: Buffer.from('The qufck brown fox jump', 'latin1'),
  cipher: hex('a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900'),
};

function expectCode(fn: () => unknown, code: 'InvalidInput' | 'ProtocolError'): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isCardBridgeError(thrown, code)).toBe(true);
}

describe('triple DES', () => {
  it('matches the SP 800-67 three-key ECB example both ways', () => {
    expect(tdesEcbEncrypt(SP800_67.key, SP800_67.plain).toString('hex')).toBe(SP800_67.cipher.toString('hex'));
    expect(tdesEcbDecrypt(SP800_67.key, SP800_67.cipher)).toEqual(SP800_67.plain);
  });

  it('treats a 16-byte key as two-key EDE (K3 = K1)', () => {
    const k1k2 = SP800_67.key.subarray(0, 16);
    const k1k2k1 = Buffer.concat([k1k2, k1k2.subarray(0, 8)]);
    const twoKey = tdesEcbEncrypt(k1k2, SP800_67.plain);
    expect(twoKey).toEqual(tdesEcbEncrypt(k1k2k1, SP800_67.plain));
    expect(twoKey).not.toEqual(SP800_67.cipher);
    expect(tdesCbcEncrypt(k1k2, Buffer.alloc(8, 7), SP800_67.plain)).toEqual(
      tdesCbcEncrypt(k1k2k1, Buffer.alloc(8, 7), SP800_67.plain),
    );
  });

  it('chains CBC blocks as C_i = E(P_i xor C_{i-1}) and decrypts back', () => {
    const iv = hex('0102030405060708');
    const cbc = tdesCbcEncrypt(SP800_67.key, iv, SP800_67.plain);
    let prev: Buffer = iv;
    for (let i = 0; i < 3; i++) {
      const p = SP800_67.plain.subarray(i * 8, i * 8 + 8);
      const x = Buffer.from(p.map((b, j) => b ^ (prev[j] as number)));
      const c = tdesEcbEncrypt(SP800_67.key, x);
      expect(cbc.subarray(i * 8, i * 8 + 8)).toEqual(c);
      prev = c;
    }
    expect(tdesCbcDecrypt(SP800_67.key, iv, cbc)).toEqual(SP800_67.plain);
  });

  it('CBC-MAC is the last CBC block', () => {
    const iv = hex('1122334455667788');
    const cbc = tdesCbcEncrypt(SP800_67.key, iv, SP800_67.plain);
    expect(tdesCbcMac(SP800_67.key, SP800_67.plain, iv)).toEqual(cbc.subarray(16));
    expect(tdesCbcMac(SP800_67.key, SP800_67.plain)).toEqual(
      tdesCbcEncrypt(SP800_67.key, Buffer.alloc(8), SP800_67.plain).subarray(16),
    );
  });

  it('rejects bad keys, IVs and unpadded data as InvalidInput', () => {
    expectCode(() => tdesEcbEncrypt(Buffer.alloc(8), Buffer.alloc(8)), 'InvalidInput');
    expectCode(() => tdesCbcEncrypt(Buffer.alloc(16), Buffer.alloc(7), Buffer.alloc(8)), 'InvalidInput');
    expectCode(() => tdesCbcEncrypt(Buffer.alloc(16), Buffer.alloc(8), Buffer.alloc(9)), 'InvalidInput');
    expectCode(() => tdesCbcMac(Buffer.alloc(16), Buffer.alloc(0)), 'InvalidInput');
  });
});

describe('single DES', () => {
  it('encrypts the classic FIPS 46 worked example, whichever backend is in use', () => {
    expect(['native', 'triple-des']).toContain(singleDesBackend());
    const key = hex('133457799bbcdff1');
    expect(desEcbEncrypt(key, hex('0123456789abcdef')).toString('hex')).toBe('85e813540f0ab405');
    expect(desEcbDecrypt(key, hex('85e813540f0ab405')).toString('hex')).toBe('0123456789abcdef');
  });

  it('equals three-key EDE with K1 = K2 = K3', () => {
    const key = hex('0e329232ea6d0d73');
    const data = hex('87878787878787870000000000000000');
    expect(desEcbEncrypt(key, data)).toEqual(tdesEcbEncrypt(Buffer.concat([key, key, key]), data));
  });

  it('requires an 8-byte key', () => {
    expectCode(() => desEcbEncrypt(Buffer.alloc(16), Buffer.alloc(8)), 'InvalidInput');
  });
});

describe('padding', () => {
  it('PKCS#7 pads 1..blockSize bytes and strips them again', () => {
    expect(pkcs7Pad(hex('313233343536ffffffff')).toString('hex')).toBe('313233343536ffffffff060606060606');
    expect(pkcs7Pad(Buffer.alloc(8, 0xaa)).toString('hex')).toBe('aa'.repeat(8) + '08'.repeat(8));
    expect(pkcs7Pad(Buffer.alloc(0), 16).toString('hex')).toBe('10'.repeat(16));
    for (let n = 0; n < 20; n++) {
      const data = Buffer.alloc(n, 0x5a);
      expect(pkcs7Unpad(pkcs7Pad(data))).toEqual(data);
      expect(pkcs7Unpad(pkcs7Pad(data, 16), 16)).toEqual(data);
    }
  });

  it('PKCS#7 unpad refuses bad padding with ProtocolError', () => {
    expectCode(() => pkcs7Unpad(hex('0102030405060700')), 'ProtocolError'); // count 0
    expectCode(() => pkcs7Unpad(hex('0102030405060709')), 'ProtocolError'); // count > block
    expectCode(() => pkcs7Unpad(hex('0102030405030203')), 'ProtocolError'); // inconsistent bytes
    expectCode(() => pkcs7Unpad(hex('010203')), 'InvalidInput'); // not a whole block
    expect(pkcs7Unpad(hex('0102030405030303')).toString('hex')).toBe('0102030405');
  });

  it('ISO 9797-1 method 2 always appends 80 then zeros', () => {
    expect(iso9797M2Pad(hex('0102')).toString('hex')).toBe('0102800000000000');
    expect(iso9797M2Pad(hex('01020304050607')).toString('hex')).toBe('0102030405060780');
    expect(iso9797M2Pad(Buffer.alloc(8, 1)).toString('hex')).toBe('01'.repeat(8) + '8000000000000000');
    expect(iso9797M2Pad(hex('313233343536ffffffff'), 16).toString('hex')).toBe('313233343536ffffffff800000000000');
  });
});
