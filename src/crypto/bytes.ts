import { timingSafeEqual } from 'node:crypto';
import { CardBridgeError } from '../errors.js';

/** Internal helpers shared by the crypto modules; not part of the public API. */

export function invalidInput(message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', message);
}

/** A Buffer view of the same memory, so callers may pass any Uint8Array without a copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function requireBytes(name: string, value: unknown, ...allowedLengths: number[]): Buffer {
  if (!(value instanceof Uint8Array)) throw invalidInput(`${name} must be a byte array`);
  if (allowedLengths.length > 0 && !allowedLengths.includes(value.length)) {
    throw invalidInput(`${name} must be ${allowedLengths.join(' or ')} bytes, got ${value.length}`);
  }
  return asBuffer(value);
}

export function requireBlockMultiple(name: string, data: Uint8Array, blockSize: number): void {
  if (data.length % blockSize !== 0) {
    throw invalidInput(`${name} must be a multiple of ${blockSize} bytes, got ${data.length}`);
  }
}

export function requireByte(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xff) {
    throw invalidInput(`${name} must be a byte, got ${String(value)}`);
  }
  return value;
}

export function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Comparison of MACs and cryptograms; unequal lengths are public and may return early. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
