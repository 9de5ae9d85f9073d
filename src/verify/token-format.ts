import { createHash } from 'node:crypto';

/**
 * The login token of `POST /v1/moica/authenticate` (docs/api.md), shared by the daemon that
 * makes it and the relying site's validator that checks it. Pure: no I/O, no state.
 *
 *   tbs       = SHA256(origin) ‖ SHA256(nonce)      (64 bytes; both hashed as UTF-8)
 *   signature = RSASSA-PKCS1-v1_5(SHA-256, tbs)     (the card signs SHA256(tbs))
 */

export const AUTH_TOKEN_FORMAT = 'cardbridge-auth-token';
export const AUTH_TOKEN_VERSION = 1;
export const AUTH_TOKEN_ALGORITHM = 'RS256';
/** Nonce length limits of `POST /v1/moica/authenticate`, in characters. */
export const NONCE_MIN_LENGTH = 32;
export const NONCE_MAX_LENGTH = 128;

export interface AuthToken {
  format: typeof AUTH_TOKEN_FORMAT;
  version: typeof AUTH_TOKEN_VERSION;
  algorithm: typeof AUTH_TOKEN_ALGORITHM;
  /** Base64 DER of the card's signing certificate. */
  certificate: string;
  /** Base64 RSASSA-PKCS1-v1_5 SHA-256 signature over the tbs. */
  signature: string;
}

/** A token (or a tbs input) that does not have the documented shape. */
export class AuthTokenFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthTokenFormatError';
  }
}

const TOKEN_FIELDS = ['format', 'version', 'algorithm', 'certificate', 'signature'] as const;
/** Generous bounds: a certificate is a few KiB, an RSA signature at most 512 bytes (4096 bits). */
const MAX_CERTIFICATE_CHARS = 16 * 1024;
const MAX_SIGNATURE_CHARS = 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True for the ASCII serialisation of a tuple origin: `https://host[:port]`, nothing more. */
export function isSerializedOrigin(origin: unknown): origin is string {
  if (typeof origin !== 'string' || origin.length === 0) return false;
  try {
    const url = new URL(origin);
    return url.origin !== 'null' && url.origin === origin;
  } catch {
    return false;
  }
}

/** True for a nonce the authenticate route accepts: a string of 32–128 characters. */
export function isValidNonce(nonce: unknown): nonce is string {
  return typeof nonce === 'string' && nonce.length >= NONCE_MIN_LENGTH && nonce.length <= NONCE_MAX_LENGTH;
}

/** `SHA256(origin) ‖ SHA256(nonce)`, the 64 bytes the card's signature covers (after SHA-256). */
export function createAuthTokenTbs(origin: string, nonce: string): Buffer {
  if (!isSerializedOrigin(origin)) {
    throw new AuthTokenFormatError(`origin must be an ASCII serialised origin such as https://www.example.gov.tw, got ${JSON.stringify(origin)}`);
  }
  if (!isValidNonce(nonce)) {
    throw new AuthTokenFormatError(`nonce must be a string of ${NONCE_MIN_LENGTH}–${NONCE_MAX_LENGTH} characters`);
  }
  return Buffer.concat([sha256(origin), sha256(nonce)]);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function base64Field(record: Record<string, unknown>, name: 'certificate' | 'signature', maxChars: number): string {
  const value = record[name];
  if (typeof value !== 'string') throw new AuthTokenFormatError(`${name} must be a base64 string`);
  if (value.length === 0) throw new AuthTokenFormatError(`${name} is empty`);
  if (value.length > maxChars) throw new AuthTokenFormatError(`${name} is longer than ${maxChars} characters`);
  if (!BASE64.test(value)) throw new AuthTokenFormatError(`${name} is not canonical base64 (RFC 4648 §4, padded, no line breaks)`);
  return value;
}

/**
 * Checks that `json` (JSON text, or the value it parses to) is exactly an {@link AuthToken}:
 * the five documented fields, nothing else, with the expected constants and base64 values.
 * It does not look inside the certificate or the signature.
 */
export function parseAuthToken(json: unknown): AuthToken {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch {
      throw new AuthTokenFormatError('token is not valid JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AuthTokenFormatError('token must be a JSON object');
  }
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !(TOKEN_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new AuthTokenFormatError(`token has unknown field(s): ${unknown.join(', ')}`);
  const missing = TOKEN_FIELDS.filter((k) => !Object.prototype.hasOwnProperty.call(record, k));
  if (missing.length > 0) throw new AuthTokenFormatError(`token lacks field(s): ${missing.join(', ')}`);
  if (record.format !== AUTH_TOKEN_FORMAT) throw new AuthTokenFormatError(`format must be '${AUTH_TOKEN_FORMAT}'`);
  if (record.version !== AUTH_TOKEN_VERSION) throw new AuthTokenFormatError(`version must be ${AUTH_TOKEN_VERSION} (the number)`);
  if (record.algorithm !== AUTH_TOKEN_ALGORITHM) throw new AuthTokenFormatError(`algorithm must be '${AUTH_TOKEN_ALGORITHM}'`);
  return {
    format: AUTH_TOKEN_FORMAT,
    version: AUTH_TOKEN_VERSION,
    algorithm: AUTH_TOKEN_ALGORITHM,
    certificate: base64Field(record, 'certificate', MAX_CERTIFICATE_CHARS),
    signature: base64Field(record, 'signature', MAX_SIGNATURE_CHARS),
  };
}
