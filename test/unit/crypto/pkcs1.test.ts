import {
  constants,
  createHash,
  generateKeyPairSync,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  verify,
  type KeyObject,
} from 'node:crypto';
import {
  pkcs1DigestInfo,
  pkcs1DigestLength,
  pkcs1Type1Pad,
  pkcs1v15SignatureBlock,
  pkcs1v15Type2Unpad,
  type Pkcs1HashName,
} from '../../../src/crypto/pkcs1.js';
import { CardBridgeError, isCardBridgeError } from '../../../src/errors.js';

const K = 256;
let privateKey: KeyObject;
let publicKey: KeyObject;

beforeAll(() => {
  ({ privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 }));
});

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** A well-formed type-2 block: 00 02 PS(nonzero, psLength) 00 message. */
function type2Block(psLength: number, message: Buffer): Buffer {
  const block = Buffer.alloc(K);
  block[1] = 0x02;
  for (let i = 0; i < psLength; i++) block[2 + i] = 1 + (i % 255);
  block[2 + psLength] = 0x00;
  message.copy(block, 3 + psLength);
  return block.subarray(0, 3 + psLength + message.length);
}

describe('PKCS#1 v1.5 signature block', () => {
  it('builds the standard SHA-256 DigestInfo prefix (spec section 2)', () => {
    const info = pkcs1DigestInfo('sha256', Buffer.alloc(32, 0xab));
    expect(info.subarray(0, 19).toString('hex')).toBe('3031300d060960864801650304020105000420');
    expect(info.subarray(19)).toEqual(Buffer.alloc(32, 0xab));
  });

  it.each(['sha1', 'sha256', 'sha384', 'sha512'] as Pkcs1HashName[])('%s: raw RSA over the block verifies with crypto.verify', (hash) => {
    const data = Buffer.from(`cardbridge ${hash} test`);
    const digest = createHash(hash).update(data).digest();
    expect(digest).toHaveLength(pkcs1DigestLength(hash));
    const block = pkcs1v15SignatureBlock(K, hash, digest);
    expect(block).toHaveLength(K);
    expect(block.subarray(0, 2).toString('hex')).toBe('0001');
    const signature = privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, block);
    expect(verify(hash, data, publicKey, signature)).toBe(true);
    expect(verify(hash, Buffer.from('other data'), publicKey, signature)).toBe(false);
    expect(publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature)).toEqual(pkcs1DigestInfo(hash, digest));
  });

  it('rejects a digest of the wrong length, an unknown hash and a too-short modulus', () => {
    expect(isCardBridgeError(caught(() => pkcs1v15SignatureBlock(K, 'sha256', Buffer.alloc(20))), 'InvalidInput')).toBe(true);
    expect(isCardBridgeError(caught(() => pkcs1v15SignatureBlock(K, 'md5' as Pkcs1HashName, Buffer.alloc(16))), 'InvalidInput')).toBe(true);
    expect(isCardBridgeError(caught(() => pkcs1v15SignatureBlock(64, 'sha512', Buffer.alloc(64))), 'InvalidInput')).toBe(true);
    expect(isCardBridgeError(caught(() => pkcs1v15SignatureBlock(255.5, 'sha256', Buffer.alloc(32))), 'InvalidInput')).toBe(true);
  });
});

describe('PKCS#1 v1.5 type-1 padding of any payload', () => {
  it('is 00 01, FF bytes, 00, then the payload, at exactly the modulus length', () => {
    const block = pkcs1Type1Pad(64, Buffer.from('abc'));
    expect(block).toHaveLength(64);
    expect(block.subarray(0, 2)).toEqual(Buffer.from([0x00, 0x01]));
    expect(block.subarray(2, 60).every((b) => b === 0xff)).toBe(true);
    expect(block[60]).toBe(0x00);
    expect(block.subarray(61).toString()).toBe('abc');
  });

  it('refuses a payload that leaves fewer than 8 bytes of padding', () => {
    expect(() => pkcs1Type1Pad(64, Buffer.alloc(54))).toThrow(/too short/);
    expect(pkcs1Type1Pad(64, Buffer.alloc(53))).toHaveLength(64);
  });
});

describe('PKCS#1 v1.5 type-2 unpadding', () => {
  it.each([0, 1, 32, 48, K - 11])('round-trips a %i-byte message through publicEncrypt + raw privateDecrypt', (length) => {
    const message = randomBytes(length);
    const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, message);
    const raw = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
    expect(pkcs1v15Type2Unpad(raw, K)).toEqual(message);
  });

  it('accepts exactly 8 padding bytes', () => {
    const message = Buffer.alloc(K - 11, 0x42);
    expect(pkcs1v15Type2Unpad(type2Block(8, message))).toEqual(message);
  });

  const malformed: Array<[string, Buffer]> = [
    ['first byte not 00', Buffer.concat([Buffer.from([0x01]), type2Block(200, Buffer.alloc(53, 7)).subarray(1)])],
    ['block type 01', Buffer.concat([Buffer.from([0x00, 0x01]), type2Block(200, Buffer.alloc(53, 7)).subarray(2)])],
    ['no separator', Buffer.concat([Buffer.from([0x00, 0x02]), Buffer.alloc(K - 2, 0x33)])],
    ['separator after 7 padding bytes', type2Block(7, Buffer.alloc(K - 10, 7))],
    ['separator right after the block type', type2Block(0, Buffer.alloc(K - 3, 7))],
  ];

  it.each(malformed)('throws one generic ProtocolError for: %s', (_label, block) => {
    expect(block).toHaveLength(K);
    const error = caught(() => pkcs1v15Type2Unpad(block, K));
    expect(isCardBridgeError(error, 'ProtocolError')).toBe(true);
    expect((error as CardBridgeError).message).toBe('Decryption failed');
  });

  it('rejects a block whose length is not the modulus length as InvalidInput', () => {
    expect(isCardBridgeError(caught(() => pkcs1v15Type2Unpad(Buffer.alloc(255), K)), 'InvalidInput')).toBe(true);
  });
});
