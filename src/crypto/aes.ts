import { createCipheriv, createDecipheriv } from 'node:crypto';
import { invalidInput, requireBlockMultiple, requireBytes } from './bytes.js';

export const AES_BLOCK_SIZE = 16;

function aesAlgorithm(key: Uint8Array, mode: 'ecb' | 'cbc'): string {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
    throw invalidInput(`AES key must be 16, 24 or 32 bytes, got ${key.length}`);
  }
  return `aes-${key.length * 8}-${mode}`;
}

function run(algorithm: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array, decrypt: boolean): Buffer {
  requireBlockMultiple('AES data', data, AES_BLOCK_SIZE);
  const cipher = decrypt ? createDecipheriv(algorithm, key, iv) : createCipheriv(algorithm, key, iv);
  // Padding is the protocol's business (SCP03 uses ISO 9797-1 method 2).
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

export function aesEcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return run(aesAlgorithm(key, 'ecb'), key, null, data, false);
}

export function aesEcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return run(aesAlgorithm(key, 'ecb'), key, null, data, true);
}

export function aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  return run(aesAlgorithm(key, 'cbc'), key, requireBytes('AES IV', iv, AES_BLOCK_SIZE), data, false);
}

export function aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  return run(aesAlgorithm(key, 'cbc'), key, requireBytes('AES IV', iv, AES_BLOCK_SIZE), data, true);
}
