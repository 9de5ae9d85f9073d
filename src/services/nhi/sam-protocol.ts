import { type KeyObject, constants, privateDecrypt, publicEncrypt } from 'node:crypto';
import { CardBridgeError } from '../../errors.js';
import { pkcs7Pad, pkcs7Unpad, tdesEcbDecrypt, tdesEcbEncrypt } from '../../crypto/des.js';
import { pkcs1v15Type2Unpad } from '../../crypto/pkcs1.js';

/**
 * The wire format of NHI's cloud SAM service (specs/nhi-card.md, "H_Sign via NHI's cloud SAM"),
 * shared by the bridge's client and the test-only emulated SAM. Pure functions: no sockets.
 *
 * - Every frame ends with the three bytes `<E>`.
 * - Handshake frames are 3DES-ECB under L_KEY, PKCS#5-padded; the client's nonce goes out as
 *   ` <len> <RSA ciphertext><E>` in clear.
 * - After the handshake every message is 3DES-ECB under the session key, PKCS#5-padded, then
 *   `<E>`. Messages are a two-character type followed by `<tag=len>value` fields.
 */

export const SAM_FRAME_END = Buffer.from('<E>', 'ascii');

/** L_KEY: ASCII `2725268641815652` followed by 8 zero bytes (a 24-byte 3DES key). */
export const SAM_L_KEY = Buffer.concat([Buffer.from('2725268641815652', 'ascii'), Buffer.alloc(8)]);

export const SAM_HELLO = Buffer.from('Hello ', 'ascii');
export const SAM_CLIENT_NONCE_LENGTH = 16;
export const SAM_SESSION_KEY_LENGTH = 24;
/** The official client's RSA key size for the handshake. */
export const SAM_CLIENT_RSA_BITS = 1024;
export const SAM_SIGNATURE_LENGTH = 256;

export const SAM_MESSAGE = {
  authRequest: '01',
  authResponse: '02',
  signRequest: '03',
  result: '04',
  healthCheck: '77',
} as const;

/** The `rc` value of a successful result. */
export const SAM_RC_OK = 'OK';

const DES_BLOCK = 8;
const PEM_END = Buffer.from('-----END PUBLIC KEY-----', 'ascii');

/** Thrown by the parsers below; the client turns it into a SamClientError for its step. */
export class SamFormatError extends Error {
  constructor(
    readonly kind: 'framing' | 'decrypt' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'SamFormatError';
  }
}

/** 3DES-ECB, PKCS#5 padding, then `<E>`. */
export function encryptFrame(key: Uint8Array, plaintext: Uint8Array): Buffer {
  return Buffer.concat([tdesEcbEncrypt(key, pkcs7Pad(plaintext, DES_BLOCK)), SAM_FRAME_END]);
}

/** Decrypts a frame body (the bytes before `<E>`). Throws SamFormatError('decrypt'). */
export function decryptFrameBody(key: Uint8Array, body: Uint8Array): Buffer {
  if (body.length === 0 || body.length % DES_BLOCK !== 0) {
    throw new SamFormatError('decrypt', `an encrypted frame of ${body.length} bytes is not whole 3DES blocks`);
  }
  try {
    return pkcs7Unpad(tdesEcbDecrypt(key, body), DES_BLOCK);
  } catch {
    throw new SamFormatError('decrypt', 'the frame does not decrypt under the expected key');
  }
}

/**
 * Where an encrypted frame ends in `buffer`: the first `<E>` that follows a whole number of
 * 3DES blocks. Returns the body length, or -1 while the frame is incomplete. (Ciphertext can
 * contain `<E>` by chance; requiring block alignment makes a false end a 1-in-2^24 event per
 * aligned position, and it then fails to decrypt rather than passing silently.)
 */
export function findEncryptedFrameEnd(buffer: Buffer): number {
  let from = 0;
  for (;;) {
    const at = buffer.indexOf(SAM_FRAME_END, from);
    if (at === -1) return -1;
    if (at > 0 && at % DES_BLOCK === 0) return at;
    from = at + 1;
  }
}

/**
 * The clear nonce frame ` <len> <bytes><E>`: returns the total frame length and the bytes, or
 * undefined while incomplete. Throws SamFormatError('framing') when the header is not that shape.
 */
export function parseNonceFrame(buffer: Buffer, maxLength = 1024): { frameLength: number; encrypted: Buffer } | undefined {
  const header = /^ (\d{1,5}) /.exec(buffer.subarray(0, 8).toString('latin1'));
  if (!header) {
    if (buffer.length >= 8 || !/^( \d{0,5})?$/.test(buffer.toString('latin1'))) {
      throw new SamFormatError('framing', 'the nonce frame does not start with " <length> "');
    }
    return undefined;
  }
  const length = Number(header[1]);
  if (length === 0 || length > maxLength) throw new SamFormatError('framing', `a nonce of ${length} bytes is not acceptable`);
  const start = header[0].length;
  const total = start + length + SAM_FRAME_END.length;
  if (buffer.length < total) return undefined;
  if (!buffer.subarray(start + length, total).equals(SAM_FRAME_END)) throw new SamFormatError('framing', 'the nonce frame does not end with <E>');
  return { frameLength: total, encrypted: Buffer.from(buffer.subarray(start, start + length)) };
}

export function encodeNonceFrame(encrypted: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(` ${encrypted.length} `, 'ascii'), encrypted, SAM_FRAME_END]);
}

/** The server's handshake plaintext: `Hello ` ‖ PEM ‖ ` <len> ` ‖ encrypted server nonce. */
export function encodeServerHello(serverPublicKeyPem: string, encryptedNonce: Uint8Array): Buffer {
  return Buffer.concat([SAM_HELLO, Buffer.from(serverPublicKeyPem, 'ascii'), Buffer.from(` ${encryptedNonce.length} `, 'ascii'), encryptedNonce]);
}

export interface ServerHello {
  publicKeyPem: string;
  encryptedNonce: Buffer;
  /** Where the nonce started, for checks against the documented offsets. */
  nonceOffset: number;
}

/**
 * Parses the decrypted server hello. The official layout has the PEM at `[6, 0x116)` and the
 * nonce at `[0x11B, 0x19B)` for RSA-1024 keys; this parser follows the structure so it does
 * not depend on the key size. Throws SamFormatError('decrypt') without `Hello `, ('malformed')
 * otherwise.
 */
export function parseServerHello(plain: Buffer): ServerHello {
  if (!plain.subarray(0, SAM_HELLO.length).equals(SAM_HELLO)) throw new SamFormatError('decrypt', 'the handshake reply does not start with "Hello "');
  const end = plain.indexOf(PEM_END, SAM_HELLO.length);
  if (end === -1) throw new SamFormatError('malformed', 'the handshake reply holds no PEM public key');
  let pemEnd = end + PEM_END.length;
  if (plain[pemEnd] === 0x0d) pemEnd++;
  if (plain[pemEnd] === 0x0a) pemEnd++;
  const publicKeyPem = plain.subarray(SAM_HELLO.length, pemEnd).toString('latin1');
  const rest = plain.subarray(pemEnd);
  const header = /^ (\d{1,4}) /.exec(rest.subarray(0, 7).toString('latin1'));
  if (!header) throw new SamFormatError('malformed', 'the handshake reply has no " <length> " before the server nonce');
  const length = Number(header[1]);
  const nonceOffset = pemEnd + header[0].length;
  if (plain.length - nonceOffset !== length) {
    throw new SamFormatError('malformed', `the server nonce should be ${length} bytes, the reply holds ${plain.length - nonceOffset}`);
  }
  return { publicKeyPem, encryptedNonce: Buffer.from(plain.subarray(nonceOffset)), nonceOffset };
}

/** Session key = (client nonce ‖ server nonce)[0..24). */
export function deriveSessionKey(clientNonce: Uint8Array, serverNonce: Uint8Array): Buffer {
  const joined = Buffer.concat([clientNonce, serverNonce]);
  if (joined.length < SAM_SESSION_KEY_LENGTH) throw new SamFormatError('malformed', 'the nonces are too short for a session key');
  return Buffer.from(joined.subarray(0, SAM_SESSION_KEY_LENGTH));
}

export function rsaPkcs1Encrypt(publicKey: KeyObject, data: Uint8Array): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, data);
}

/**
 * RSA PKCS#1 v1.5 decryption. Node 20 refuses RSA_PKCS1_PADDING in privateDecrypt (Marvin
 * mitigation), so the raw RSA result is unpadded by the project's constant-time routine.
 */
export function rsaPkcs1Decrypt(privateKey: KeyObject, ciphertext: Uint8Array): Buffer {
  const modulusBytes = Math.ceil((privateKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (modulusBytes === 0 || ciphertext.length !== modulusBytes) {
    throw new CardBridgeError('ProtocolError', 'Decryption failed');
  }
  const block = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
  return pkcs1v15Type2Unpad(block, modulusBytes);
}

export type SamField = readonly [tag: string, value: Uint8Array | string];

/** `type` ‖ `<tag=len>value` …, e.g. `01<id=12>…<rn=8>…`. */
export function encodeSamMessage(type: string, fields: readonly SamField[] = []): Buffer {
  const parts: Buffer[] = [Buffer.from(type, 'ascii')];
  for (const [tag, value] of fields) {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
    parts.push(Buffer.from(`<${tag}=${bytes.length}>`, 'ascii'), bytes);
  }
  return Buffer.concat(parts);
}

export interface SamMessage {
  type: string;
  fields: Map<string, Buffer>;
}

/**
 * Parses a decrypted message. A trailing `<E>` inside the plaintext is tolerated (the spec's
 * notation can be read either way); anything else that does not follow the grammar throws
 * SamFormatError('malformed').
 */
export function parseSamMessage(plain: Buffer): SamMessage {
  let body = plain;
  if (body.length >= 5 && body.subarray(body.length - 3).equals(SAM_FRAME_END)) body = body.subarray(0, body.length - 3);
  const type = body.subarray(0, 2).toString('latin1');
  if (!/^[0-9A-Za-z]{2}$/.test(type)) throw new SamFormatError('malformed', 'the message has no two-character type');
  const fields = new Map<string, Buffer>();
  let i = 2;
  while (i < body.length) {
    const close = body.indexOf(0x3e /* > */, i);
    const header = close === -1 ? undefined : /^<([0-9A-Za-z]{1,8})=(\d{1,5})>$/.exec(body.subarray(i, close + 1).toString('latin1'));
    if (!header) throw new SamFormatError('malformed', `message ${type}: no <tag=length> at byte ${i}`);
    const tag = header[1]!;
    const length = Number(header[2]);
    const start = close + 1;
    if (start + length > body.length) throw new SamFormatError('malformed', `message ${type}: field ${tag} says ${length} bytes, ${body.length - start} remain`);
    if (fields.has(tag)) throw new SamFormatError('malformed', `message ${type}: field ${tag} appears twice`);
    fields.set(tag, Buffer.from(body.subarray(start, start + length)));
    i = start + length;
  }
  return { type, fields };
}
