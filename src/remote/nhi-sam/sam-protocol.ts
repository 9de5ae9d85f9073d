import { type KeyObject, constants, privateDecrypt, publicEncrypt } from 'node:crypto';
import { CardBridgeError } from '../../errors.js';
import { pkcs7Pad, pkcs7Unpad, tdesEcbDecrypt, tdesEcbEncrypt } from '../../crypto/des.js';
import { pkcs1v15Type2Unpad } from '../../crypto/pkcs1.js';

/**
 * The wire format of NHI's cloud SAM (specs/nhi-card.md, "Web login signature (H_Sign) via
 * NHI's cloud SAM"), shared by the bridge's client and the test-only emulated SAM. Pure
 * functions, no sockets. Known-answer tests (test/unit/nhi/sam-codec.test.ts) pin every layout
 * to bytes computed independently from the spec, so the two users cannot share one mistake.
 *
 * - Every frame ends with the three bytes `<E>`.
 * - Handshake: the client's hello and the server's reply are 3DES-ECB under L_KEY, PKCS#5; the
 *   client's nonce goes back in clear as ` <len> <RSA ciphertext><E>`.
 * - Messages 01–04 are plaintexts that themselves end in `<E>`, encrypted 3DES-ECB under the
 *   session key (PKCS#5) and followed by the frame's own `<E>`.
 * - The health check `77<E>` → `04<rc=2>OK<E>` is plain, on a connection of its own.
 */

export const SAM_FRAME_END = Buffer.from('<E>', 'latin1');

/** L_KEY: ASCII `2725268641815652` followed by 8 zero bytes (a 24-byte 3DES key). */
export const SAM_L_KEY = Buffer.concat([Buffer.from('2725268641815652', 'latin1'), Buffer.alloc(8)]);

export const SAM_HELLO = Buffer.from('Hello ', 'latin1');
/** The client's RSA key size: the server's encrypted nonce is therefore 128 bytes. */
export const SAM_CLIENT_RSA_BITS = 1024;
export const SAM_CLIENT_NONCE_LENGTH = 16;
export const SAM_SESSION_KEY_LENGTH = 24;
export const SAM_CARD_ID_LENGTH = 12;
export const SAM_CHALLENGE_LENGTH = 8;
export const SAM_AUTH_DATA_LENGTH = 32;
export const SAM_CARD_REPLY_LENGTH = 16;
export const SAM_SIGN_INPUT_LENGTH = 20;
export const SAM_SIGNATURE_LENGTH = 256;

/** Fixed offsets of the decrypted server hello; the bytes between and after are not read. */
export const SERVER_HELLO_LAYOUT = { pemStart: 6, pemEnd: 0x116, nonceStart: 0x11b, nonceEnd: 0x11b + 0x80 } as const;

/** The plain health check on a connection of its own, and the only answer that means "up". */
export const SAM_HEALTH_REQUEST = Buffer.from('77<E>', 'latin1');
export const SAM_HEALTH_OK = Buffer.from('04<rc=2>OK<E>', 'latin1');

const DES_BLOCK = 8;
const ascii = (s: string) => Buffer.from(s, 'latin1');
const AUTH_REQUEST_PREFIX = ascii(`01<id=${SAM_CARD_ID_LENGTH}>`);
const AUTH_REQUEST_CHALLENGE_TAG = ascii(`<rn=${SAM_CHALLENGE_LENGTH}>`);
const AUTH_RESPONSE_PREFIX = ascii(`02<au=${SAM_AUTH_DATA_LENGTH}>`);
const SIGN_REQUEST_PREFIX = ascii(`03<au=${SAM_CARD_REPLY_LENGTH}>`);
const SIGN_REQUEST_INPUT_TAG = ascii(`<se=${SAM_SIGN_INPUT_LENGTH}>`);
const RESULT_PREFIX = ascii('04<rc=2>');
const SIGN_RESULT_PREFIX = ascii(`04<rc=2>OK<si=${SAM_SIGNATURE_LENGTH}>`);
const PEM_BEGIN = '-----BEGIN PUBLIC KEY-----\n';
const PEM_END = '\n-----END PUBLIC KEY-----';

/**
 * Thrown by the parsers below; the client turns it into a SamClientError for its step.
 * `rejected` is a well-formed `04<rc=2>xx<E>` whose code is not OK.
 */
export class SamFormatError extends Error {
  constructor(
    readonly kind: 'framing' | 'decrypt' | 'malformed' | 'rejected',
    message: string,
  ) {
    super(message);
    this.name = 'SamFormatError';
  }
}

// ---- frames -----------------------------------------------------------------------------

/** 3DES-ECB(key, PKCS#5(plaintext)) ‖ `<E>`. */
export function sealFrame(key: Uint8Array, plaintext: Uint8Array): Buffer {
  return Buffer.concat([tdesEcbEncrypt(key, pkcs7Pad(plaintext, DES_BLOCK)), SAM_FRAME_END]);
}

/** Decrypts a frame body (the bytes before the frame's `<E>`). Throws SamFormatError('decrypt'). */
export function openFrameBody(key: Uint8Array, body: Uint8Array): Buffer {
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

/** The clear nonce frame ` <len> <bytes><E>` (ASCII decimal length). */
export function encodeNonceFrame(encrypted: Uint8Array): Buffer {
  return Buffer.concat([ascii(` ${encrypted.length} `), encrypted, SAM_FRAME_END]);
}

/**
 * Parses ` <len> <bytes><E>` at the start of `buffer`: the total frame length and the bytes, or
 * undefined while incomplete. Throws SamFormatError('framing') when it is not that shape.
 */
export function parseNonceFrame(buffer: Buffer, maxLength = 1024): { frameLength: number; encrypted: Buffer } | undefined {
  const header = /^ ([1-9]\d{0,4}) /.exec(buffer.subarray(0, 8).toString('latin1'));
  if (!header) {
    if (buffer.length >= 8 || !/^( [1-9]?\d{0,4})?$/.test(buffer.toString('latin1'))) {
      throw new SamFormatError('framing', 'the nonce frame does not start with " <length> "');
    }
    return undefined;
  }
  const length = Number(header[1]);
  if (length > maxLength) throw new SamFormatError('framing', `a nonce of ${length} bytes is not acceptable`);
  const start = header[0].length;
  const total = start + length + SAM_FRAME_END.length;
  if (buffer.length < total) return undefined;
  if (!buffer.subarray(start + length, total).equals(SAM_FRAME_END)) throw new SamFormatError('framing', 'the nonce frame does not end with <E>');
  return { frameLength: total, encrypted: Buffer.from(buffer.subarray(start, start + length)) };
}

// ---- handshake --------------------------------------------------------------------------

/** The client's hello plaintext: `Hello ` ‖ SPKI PEM with its trailing newline removed. */
export function encodeClientHello(publicKeyPem: string): Buffer {
  return Buffer.concat([SAM_HELLO, ascii(publicKeyPem.replace(/\r?\n$/, ''))]);
}

/**
 * The emulator's reading of a client hello: `Hello ` ‖ one PEM public key, ending exactly at
 * `-----END PUBLIC KEY-----` (the spec's client removes the trailing newline). Throws
 * SamFormatError('malformed') otherwise.
 */
export function parseClientHello(plain: Buffer): string {
  if (!plain.subarray(0, SAM_HELLO.length).equals(SAM_HELLO)) throw new SamFormatError('malformed', 'the hello does not start with "Hello "');
  const pem = plain.subarray(SAM_HELLO.length).toString('latin1');
  if (!pem.startsWith(PEM_BEGIN) || !pem.endsWith(PEM_END)) {
    throw new SamFormatError('malformed', 'the hello is not "Hello " followed by a PEM public key without its trailing newline');
  }
  return pem;
}

export interface ServerHello {
  publicKeyPem: string;
  encryptedNonce: Buffer;
}

/**
 * The server's hello plaintext: `Hello ` ‖ PEM (exactly 0x110 bytes: an RSA-1024 SPKI PEM with
 * its newline) ‖ five bytes whose content has never been published ‖ the 128-byte encrypted
 * nonce ‖ whatever the server appends.
 */
export function encodeServerHello(publicKeyPem: string, between: Uint8Array, encryptedNonce: Uint8Array, after: Uint8Array = Buffer.alloc(0)): Buffer {
  const { pemStart, pemEnd, nonceStart, nonceEnd } = SERVER_HELLO_LAYOUT;
  const pem = ascii(publicKeyPem);
  if (pem.length !== pemEnd - pemStart) throw new RangeError(`the server PEM must be ${pemEnd - pemStart} bytes, not ${pem.length}`);
  if (between.length !== nonceStart - pemEnd) throw new RangeError(`${nonceStart - pemEnd} bytes go between the PEM and the nonce`);
  if (encryptedNonce.length !== nonceEnd - nonceStart) throw new RangeError(`the encrypted nonce must be ${nonceEnd - nonceStart} bytes`);
  return Buffer.concat([SAM_HELLO, pem, between, encryptedNonce, after]);
}

/**
 * Reads the decrypted server hello at the fixed offsets, as the working peer does: PEM at
 * `[6, 0x116)`, encrypted nonce at `[0x11B, 0x19B)`; the five bytes between and anything after
 * the nonce are ignored. Throws SamFormatError('malformed') when it is too short or lacks `Hello `.
 */
export function parseServerHello(plain: Buffer): ServerHello {
  const { pemStart, pemEnd, nonceStart, nonceEnd } = SERVER_HELLO_LAYOUT;
  if (!plain.subarray(0, SAM_HELLO.length).equals(SAM_HELLO)) throw new SamFormatError('malformed', 'the handshake reply does not start with "Hello "');
  if (plain.length < nonceEnd) throw new SamFormatError('malformed', `the handshake reply is ${plain.length} bytes, the nonce ends at ${nonceEnd}`);
  return {
    publicKeyPem: plain.subarray(pemStart, pemEnd).toString('latin1'),
    encryptedNonce: Buffer.from(plain.subarray(nonceStart, nonceEnd)),
  };
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

// ---- messages (plaintexts, each ending in <E>) --------------------------------------------

function requireLength(name: string, value: Uint8Array, length: number): void {
  if (value.length !== length) throw new RangeError(`${name} must be ${length} bytes, not ${value.length}`);
}

/** Checks `prefix … <E>` of an exact total length; returns the bytes between. */
function fixedMessage(plain: Buffer, prefix: Buffer, valueLength: number, name: string): Buffer {
  if (!plain.subarray(0, prefix.length).equals(prefix)) {
    throw new SamFormatError('malformed', `${name}: expected "${prefix.toString('latin1')}", got "${printable(plain.subarray(0, prefix.length))}"`);
  }
  if (plain.length < SAM_FRAME_END.length || !plain.subarray(plain.length - SAM_FRAME_END.length).equals(SAM_FRAME_END)) {
    throw new SamFormatError('malformed', `${name}: the message does not end in <E>`);
  }
  if (plain.length !== prefix.length + valueLength + SAM_FRAME_END.length) {
    throw new SamFormatError('malformed', `${name}: ${plain.length} bytes, expected ${prefix.length + valueLength + SAM_FRAME_END.length}`);
  }
  return Buffer.from(plain.subarray(prefix.length, prefix.length + valueLength));
}

/** `01<id=12>` ‖ card id ‖ `<rn=8>` ‖ challenge ‖ `<E>`. */
export function encodeAuthRequest(cardId: Uint8Array, challenge: Uint8Array): Buffer {
  requireLength('the card id', cardId, SAM_CARD_ID_LENGTH);
  requireLength('the challenge', challenge, SAM_CHALLENGE_LENGTH);
  return Buffer.concat([AUTH_REQUEST_PREFIX, cardId, AUTH_REQUEST_CHALLENGE_TAG, challenge, SAM_FRAME_END]);
}

export function parseAuthRequest(plain: Buffer): { cardId: Buffer; challenge: Buffer } {
  const value = fixedMessage(plain, AUTH_REQUEST_PREFIX, SAM_CARD_ID_LENGTH + AUTH_REQUEST_CHALLENGE_TAG.length + SAM_CHALLENGE_LENGTH, 'message 01');
  if (!value.subarray(SAM_CARD_ID_LENGTH, SAM_CARD_ID_LENGTH + AUTH_REQUEST_CHALLENGE_TAG.length).equals(AUTH_REQUEST_CHALLENGE_TAG)) {
    throw new SamFormatError('malformed', 'message 01: no <rn=8> after the card id');
  }
  return { cardId: value.subarray(0, SAM_CARD_ID_LENGTH), challenge: value.subarray(SAM_CARD_ID_LENGTH + AUTH_REQUEST_CHALLENGE_TAG.length) };
}

/** `02<au=32>` ‖ 32 bytes ‖ `<E>`. */
export function encodeAuthResponse(authData: Uint8Array): Buffer {
  requireLength('the authentication data', authData, SAM_AUTH_DATA_LENGTH);
  return Buffer.concat([AUTH_RESPONSE_PREFIX, authData, SAM_FRAME_END]);
}

/** The 32 bytes for the card; checks the prefix and the trailing `<E>`. */
export function parseAuthResponse(plain: Buffer): Buffer {
  return fixedMessage(plain, AUTH_RESPONSE_PREFIX, SAM_AUTH_DATA_LENGTH, 'message 02');
}

/** `03<au=16>` ‖ card answer ‖ `<se=20>` ‖ the 20 characters ‖ `<E>`. */
export function encodeSignRequest(cardReply: Uint8Array, input: string): Buffer {
  requireLength('the card answer', cardReply, SAM_CARD_REPLY_LENGTH);
  const inputBytes = ascii(input);
  requireLength('the string to sign', inputBytes, SAM_SIGN_INPUT_LENGTH);
  return Buffer.concat([SIGN_REQUEST_PREFIX, cardReply, SIGN_REQUEST_INPUT_TAG, inputBytes, SAM_FRAME_END]);
}

export function parseSignRequest(plain: Buffer): { cardReply: Buffer; input: string } {
  const value = fixedMessage(plain, SIGN_REQUEST_PREFIX, SAM_CARD_REPLY_LENGTH + SIGN_REQUEST_INPUT_TAG.length + SAM_SIGN_INPUT_LENGTH, 'message 03');
  if (!value.subarray(SAM_CARD_REPLY_LENGTH, SAM_CARD_REPLY_LENGTH + SIGN_REQUEST_INPUT_TAG.length).equals(SIGN_REQUEST_INPUT_TAG)) {
    throw new SamFormatError('malformed', 'message 03: no <se=20> after the card answer');
  }
  return { cardReply: value.subarray(0, SAM_CARD_REPLY_LENGTH), input: value.subarray(SAM_CARD_REPLY_LENGTH + SIGN_REQUEST_INPUT_TAG.length).toString('latin1') };
}

/** `04<rc=2>OK<si=256>` ‖ 256 bytes ‖ `<E>`. */
export function encodeSignResult(signature: Uint8Array): Buffer {
  requireLength('the signature', signature, SAM_SIGNATURE_LENGTH);
  return Buffer.concat([SIGN_RESULT_PREFIX, signature, SAM_FRAME_END]);
}

/**
 * `04<rc=2>` ‖ a 2-character code other than OK ‖ `<E>`. The real SAM's refusal has never been
 * published; this shape is the emulator's choice, and the client reads it only to tell a
 * refusal from garbage.
 */
export function encodeRefusal(code: string): Buffer {
  const rc = ascii(code);
  requireLength('the result code', rc, 2);
  return Buffer.concat([RESULT_PREFIX, rc, SAM_FRAME_END]);
}

/**
 * The H_Sign value: bytes `[18, 274)` of `04<rc=2>OK<si=256>…<E>`. A `04<rc=2>xx` with another
 * code is SamFormatError('rejected'); anything else 'malformed'.
 */
export function parseSignResult(plain: Buffer): Buffer {
  if (plain.subarray(0, RESULT_PREFIX.length).equals(RESULT_PREFIX) && plain.length >= RESULT_PREFIX.length + 2) {
    const rc = plain.subarray(RESULT_PREFIX.length, RESULT_PREFIX.length + 2).toString('latin1');
    if (rc !== 'OK') throw new SamFormatError('rejected', `the SAM refused with result code "${printable(Buffer.from(rc, 'latin1'))}"`);
  }
  return fixedMessage(plain, SIGN_RESULT_PREFIX, SAM_SIGNATURE_LENGTH, 'message 04');
}

/** For error messages: a peer's bytes without control characters. */
export function printable(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 40);
}
