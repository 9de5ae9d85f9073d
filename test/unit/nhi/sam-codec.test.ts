import { createCipheriv, createHash } from 'node:crypto';
import {
  SAM_HEALTH_OK,
  SAM_HEALTH_REQUEST,
  SAM_L_KEY,
  SamFormatError,
  deriveSessionKey,
  encodeAuthRequest,
  encodeAuthResponse,
  encodeClientHello,
  encodeNonceFrame,
  encodeRefusal,
  encodeServerHello,
  encodeSignRequest,
  encodeSignResult,
  findEncryptedFrameEnd,
  openFrameBody,
  parseAuthRequest,
  parseAuthResponse,
  parseClientHello,
  parseNonceFrame,
  parseServerHello,
  parseSignRequest,
  parseSignResult,
  sealFrame,
} from '../../../src/remote/nhi-sam/sam-protocol.js';

/*
 * Known answers for the SAM frame codec (specs/nhi-card.md, H_Sign section). Every expected
 * value is laid out here by hand from the spec. The hex literals and SHA-256 digests were
 * computed outside the project with the openssl command line, e.g.
 *   printf '01<id=12>000011112222<rn=8>\x01…\x08<E>' | openssl enc -des-ede3 -K 0011…cdef -nosalt
 * and each is also recomputed below with node:crypto's own PKCS#5 padding (not the project's
 * des/pkcs7 helpers), so a mistake shared by the bridge's client and the emulated SAM fails here.
 */

const ascii = (s: string) => Buffer.from(s, 'latin1');
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const E = ascii('<E>');

/** 3DES-ECB with OpenSSL's automatic PKCS#5 padding, then the frame's `<E>`. */
function frame(key: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv('des-ede3-ecb', key, null);
  return Buffer.concat([c.update(plaintext), c.final(), E]);
}

const CLIENT_NONCE = hex('00112233445566778899aabbccddeeff');
const SERVER_NONCE = hex('0123456789abcdeffedcba9876543210');
const SESSION_KEY = hex('00112233445566778899aabbccddeeff 0123456789abcdef');
const CARD_ID = ascii('000011112222');
const CHALLENGE = hex('0102030405060708');
const AUTH_DATA = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const CARD_REPLY = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
const INPUT = '00011234567890123456';
const SIGNATURE = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff));
/** A fixed RSA-1024 public key (no private half exists anywhere): its SPKI PEM is 0x110 bytes with the newline. */
const PEM =
  '-----BEGIN PUBLIC KEY-----\n' +
  'MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDM58DPE9Y3/pIZmARepS+pLAWa\n' +
  '4xLZob1DRhez6Mk6XxQIP7r/L8pyCbfvKxnuU81XIumD91JI+W+Dh1AP9qbJKzAj\n' +
  'XiKKr2Bmj+M3eRtRsrwt/uloY/VM2oX9gzgkLHKcN+UJ++Vuog3qA4eFuAuxGPKi\n' +
  'H9HueIsEi0F5E0i5pwIDAQAB\n' +
  '-----END PUBLIC KEY-----\n';

/** Runs a decode that must fail and returns its SamFormatError. */
function failure(run: () => unknown): SamFormatError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(SamFormatError);
    return e as SamFormatError;
  }
  throw new Error('expected a SamFormatError');
}

describe('SAM codec known answers: keys', () => {
  it('L_KEY is ASCII 2725268641815652 then 8 zero bytes', () => {
    expect(SAM_L_KEY.toString('hex')).toBe('323732353236383634313831353635320000000000000000');
  });

  it('session key = (client nonce ‖ server nonce)[0..24)', () => {
    expect(deriveSessionKey(CLIENT_NONCE, SERVER_NONCE)).toEqual(SESSION_KEY);
  });

  it('a sealed frame is 3DES-ECB + PKCS#5, then <E> (openssl: "Hello x" under L_KEY)', () => {
    const expected = Buffer.concat([hex('3ba5d3d747e8bb3b'), E]);
    expect(frame(SAM_L_KEY, ascii('Hello x'))).toEqual(expected);
    expect(sealFrame(SAM_L_KEY, ascii('Hello x'))).toEqual(expected);
    expect(openFrameBody(SAM_L_KEY, expected.subarray(0, -3)).toString('latin1')).toBe('Hello x');
    expect(findEncryptedFrameEnd(expected)).toBe(8);
  });
});

describe('SAM codec known answers: handshake', () => {
  it('client hello: Hello ‖ PEM without its trailing newline, under L_KEY', () => {
    const plaintext = Buffer.concat([ascii('Hello '), ascii(PEM.slice(0, -1))]);
    expect(plaintext.length).toBe(6 + 271);
    const expected = frame(SAM_L_KEY, plaintext);
    expect(sha256(expected.subarray(0, -3))).toBe('cc102065f7aa121e8b50b05cbc396b810d24c40fde9872dc0731d94fd812e159');
    // encode: from the PEM as Node exports it (with the newline)
    expect(sealFrame(SAM_L_KEY, encodeClientHello(PEM))).toEqual(expected);
    // decode: the emulator's reading, which refuses the old client's trailing newline
    expect(parseClientHello(openFrameBody(SAM_L_KEY, expected.subarray(0, -3)))).toBe(PEM.slice(0, -1));
    expect(failure(() => parseClientHello(Buffer.concat([ascii('Hello '), ascii(PEM)]))).kind).toBe('malformed');
    expect(failure(() => parseClientHello(ascii(`Hallo ${PEM.slice(0, -1)}`))).kind).toBe('malformed');
  });

  it('server hello: PEM at [6, 0x116), five bytes, nonce at [0x11B, 0x19B), then anything', () => {
    const nonce = Buffer.alloc(128, 0x5a);
    const plaintext = Buffer.concat([ascii('Hello '), ascii(PEM), ascii(' 128 '), nonce, E]);
    expect(plaintext.length).toBe(0x19b + 3);
    const expected = frame(SAM_L_KEY, plaintext);
    expect(sha256(expected.subarray(0, -3))).toBe('74216fbd39f56c6c4508092ee8bcfb914f171416413b3c6458661ffbd7876b47');
    expect(sealFrame(SAM_L_KEY, encodeServerHello(PEM, ascii(' 128 '), nonce, E))).toEqual(expected);
    expect(parseServerHello(openFrameBody(SAM_L_KEY, expected.subarray(0, -3)))).toEqual({ publicKeyPem: PEM, encryptedNonce: nonce });
  });

  it('server hello: the bytes between and after are not read', () => {
    const nonce = Buffer.alloc(128, 0x5a);
    const odd = Buffer.concat([ascii('Hello '), ascii(PEM), hex('00ff3c453e'), nonce, Buffer.alloc(41, 0xee)]);
    expect(parseServerHello(odd)).toEqual({ publicKeyPem: PEM, encryptedNonce: nonce });
    const bare = Buffer.concat([ascii('Hello '), ascii(PEM), ascii('xxxxx'), nonce]);
    expect(parseServerHello(bare)).toEqual({ publicKeyPem: PEM, encryptedNonce: nonce });
    expect(failure(() => parseServerHello(bare.subarray(0, 0x19a))).message).toMatch(/0x19b|411/i);
    expect(failure(() => parseServerHello(Buffer.concat([ascii('Howdy '), bare.subarray(6)]))).kind).toBe('malformed');
  });

  it('client nonce frame: " <len> " ‖ RSA ciphertext ‖ <E>, in clear', () => {
    const encrypted = Buffer.alloc(128, 0x33);
    const expected = Buffer.concat([ascii(' 128 '), encrypted, E]);
    expect(encodeNonceFrame(encrypted)).toEqual(expected);
    expect(parseNonceFrame(expected)).toEqual({ frameLength: 136, encrypted });
    expect(parseNonceFrame(expected.subarray(0, 135))).toBeUndefined();
    expect(failure(() => parseNonceFrame(Buffer.concat([expected.subarray(0, -3), ascii('<X>')]))).kind).toBe('framing');
    expect(failure(() => parseNonceFrame(ascii('128 xxxxx'))).kind).toBe('framing');
  });
});

describe('SAM codec known answers: messages (the <E> inside the plaintext and after the ciphertext)', () => {
  it('01<id=12>…<rn=8>…<E> (openssl)', () => {
    const plaintext = Buffer.concat([ascii('01<id=12>'), CARD_ID, ascii('<rn=8>'), CHALLENGE, E]);
    const expected = Buffer.concat([hex('3c2db3fb0376d1928a1254481637ae22aa5ef9f9d01df6b1ce374491893319907669646a49a08c66'), E]);
    expect(frame(SESSION_KEY, plaintext)).toEqual(expected);
    expect(sealFrame(SESSION_KEY, encodeAuthRequest(CARD_ID, CHALLENGE))).toEqual(expected);
    expect(parseAuthRequest(openFrameBody(SESSION_KEY, expected.subarray(0, -3)))).toEqual({ cardId: CARD_ID, challenge: CHALLENGE });
  });

  it('02<au=32>…<E> (openssl)', () => {
    const plaintext = Buffer.concat([ascii('02<au=32>'), AUTH_DATA, E]);
    const expected = Buffer.concat([hex('06705b6fea22d7a95ef86977b96ae4dbb75bfc6471bae8d23c6a506ae91e788eb5e5ddfe1b0f04da76957048dca26ef5'), E]);
    expect(frame(SESSION_KEY, plaintext)).toEqual(expected);
    expect(sealFrame(SESSION_KEY, encodeAuthResponse(AUTH_DATA))).toEqual(expected);
    expect(parseAuthResponse(openFrameBody(SESSION_KEY, expected.subarray(0, -3)))).toEqual(AUTH_DATA);
  });

  it('03<au=16>…<se=20>…<E> (openssl)', () => {
    const plaintext = Buffer.concat([ascii('03<au=16>'), CARD_REPLY, ascii('<se=20>'), ascii(INPUT), E]);
    const expected = Buffer.concat([hex('0a2d833c2bbcd1dd94a0cc4252d144af4ffab10d975ce03615ca7816498080b340e851defaf66cccc87468d7fa2ef923b0e0d29c799ee725'), E]);
    expect(frame(SESSION_KEY, plaintext)).toEqual(expected);
    expect(sealFrame(SESSION_KEY, encodeSignRequest(CARD_REPLY, INPUT))).toEqual(expected);
    expect(parseSignRequest(openFrameBody(SESSION_KEY, expected.subarray(0, -3)))).toEqual({ cardReply: CARD_REPLY, input: INPUT });
  });

  it('04<rc=2>OK<si=256>…<E>: bytes [18, 274) are the result (openssl digest)', () => {
    const plaintext = Buffer.concat([ascii('04<rc=2>OK<si=256>'), SIGNATURE, E]);
    expect(plaintext.subarray(18, 274)).toEqual(SIGNATURE);
    const expected = frame(SESSION_KEY, plaintext);
    expect(sha256(expected.subarray(0, -3))).toBe('46c2728d60e1d741f547882037ba23122afc8a13484d45526d184fe0f0d3ae1e');
    expect(sealFrame(SESSION_KEY, encodeSignResult(SIGNATURE))).toEqual(expected);
    expect(parseSignResult(openFrameBody(SESSION_KEY, expected.subarray(0, -3)))).toEqual(SIGNATURE);
  });

  it('a refusal 04<rc=2>NG<E> (the emulator\'s shape; openssl) decodes as rejected, not as garbage', () => {
    const expected = Buffer.concat([hex('658b57bc8019e29c6f8be32f56e72e04'), E]);
    expect(sealFrame(SESSION_KEY, encodeRefusal('NG'))).toEqual(expected);
    const plain = openFrameBody(SESSION_KEY, expected.subarray(0, -3));
    expect(plain.toString('latin1')).toBe('04<rc=2>NG<E>');
    expect(failure(() => parseSignResult(plain)).kind).toBe('rejected');
    expect(failure(() => parseAuthResponse(plain)).kind).toBe('malformed');
  });

  it('the plain health check and its only good answer', () => {
    expect(SAM_HEALTH_REQUEST).toEqual(ascii('77<E>'));
    expect(SAM_HEALTH_OK).toEqual(ascii('04<rc=2>OK<E>'));
    expect(SAM_HEALTH_OK.length).toBe(13);
  });
});

describe('SAM codec: decoders check the prefix and the trailing <E>', () => {
  it.each<[string, () => unknown]>([
    ['02 without its inner <E>', () => parseAuthResponse(Buffer.concat([ascii('02<au=32>'), AUTH_DATA]))],
    ['02 with 31 bytes', () => parseAuthResponse(Buffer.concat([ascii('02<au=31>'), AUTH_DATA.subarray(0, 31), E]))],
    ['02 with a byte too many', () => parseAuthResponse(Buffer.concat([ascii('02<au=32>'), AUTH_DATA, ascii('x'), E]))],
    ['04 instead of 02', () => parseAuthResponse(Buffer.concat([ascii('04<rc=2>OK<si=256>'), SIGNATURE, E]))],
    ['04 without its inner <E>', () => parseSignResult(Buffer.concat([ascii('04<rc=2>OK<si=256>'), SIGNATURE]))],
    ['04 with 255 bytes', () => parseSignResult(Buffer.concat([ascii('04<rc=2>OK<si=255>'), SIGNATURE.subarray(0, 255), E]))],
    ['02 instead of 04', () => parseSignResult(Buffer.concat([ascii('02<au=32>'), AUTH_DATA, E]))],
    ['01 without its inner <E> (the old framing)', () => parseAuthRequest(Buffer.concat([ascii('01<id=12>'), CARD_ID, ascii('<rn=8>'), CHALLENGE]))],
    ['01 with the fields swapped', () => parseAuthRequest(Buffer.concat([ascii('01<rn=8>'), CHALLENGE, ascii('<id=12>'), CARD_ID, E]))],
    ['03 without its inner <E> (the old framing)', () => parseSignRequest(Buffer.concat([ascii('03<au=16>'), CARD_REPLY, ascii('<se=20>'), ascii(INPUT)]))],
  ])('%s → malformed', (_label, run) => {
    expect(failure(run).kind).toBe('malformed');
  });

  it('a body that is not whole blocks, or not under the key, does not decrypt', () => {
    expect(failure(() => openFrameBody(SESSION_KEY, Buffer.alloc(7))).kind).toBe('decrypt');
    expect(failure(() => openFrameBody(Buffer.alloc(24, 1), hex('3c2db3fb0376d1928a1254481637ae22aa5ef9f9d01df6b1ce374491893319907669646a49a08c66'))).kind).toBe('decrypt');
  });
});
