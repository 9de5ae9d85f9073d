import { createCipheriv, createDecipheriv } from 'node:crypto';
import { asBuffer, invalidInput, requireBlockMultiple, requireBytes } from './bytes.js';
import { CardBridgeError } from '../errors.js';

export const DES_BLOCK_SIZE = 8;

type Mode = 'cbc' | 'ecb';

function tripleDesAlgorithm(key: Uint8Array, mode: Mode): string {
  // OpenSSL's "des-ede" is the two-key variant (K3 = K1); a 16-byte key must go there, not to
  // des-ede3, which would reject it.
  if (key.length === 16) return `des-ede-${mode}`;
  if (key.length === 24) return `des-ede3-${mode}`;
  throw invalidInput(`Triple-DES key must be 16 or 24 bytes, got ${key.length}`);
}

function runCipher(
  algorithm: string,
  key: Uint8Array,
  iv: Uint8Array | null,
  data: Uint8Array,
  decrypt: boolean,
): Buffer {
  requireBlockMultiple('DES data', data, DES_BLOCK_SIZE);
  const cipher = decrypt ? createDecipheriv(algorithm, key, iv) : createCipheriv(algorithm, key, iv);
  // Card protocols define their own padding; OpenSSL's would add a block the card never expects.
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

function checkIv(iv: Uint8Array): Buffer {
  return requireBytes('DES IV', iv, DES_BLOCK_SIZE);
}

export function tdesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  return runCipher(tripleDesAlgorithm(key, 'cbc'), key, checkIv(iv), data, false);
}

export function tdesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Buffer {
  return runCipher(tripleDesAlgorithm(key, 'cbc'), key, checkIv(iv), data, true);
}

export function tdesEcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return runCipher(tripleDesAlgorithm(key, 'ecb'), key, null, data, false);
}

export function tdesEcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return runCipher(tripleDesAlgorithm(key, 'ecb'), key, null, data, true);
}

/**
 * CBC-MAC: the last block of 3DES-CBC. The data must already be padded, because the padding
 * rule (PKCS#7, ISO 9797-1 method 2, ...) belongs to the protocol, not to the MAC.
 */
export function tdesCbcMac(key: Uint8Array, data: Uint8Array, iv: Uint8Array = new Uint8Array(DES_BLOCK_SIZE)): Buffer {
  if (data.length === 0) throw invalidInput('CBC-MAC needs at least one block of data');
  const encrypted = tdesCbcEncrypt(key, iv, data);
  return Buffer.from(encrypted.subarray(encrypted.length - DES_BLOCK_SIZE));
}

export type SingleDesBackend = 'native' | 'triple-des';

let singleDesBackendCache: SingleDesBackend | undefined;

/**
 * OpenSSL 3 moved single DES to the legacy provider, which Node 20 does not load by default, so
 * `des-ecb` may throw "unsupported". EDE with K1 = K2 = K3 collapses to E_K(D_K(E_K(x))) = E_K(x),
 * so three copies of the key give the same result through the default provider.
 */
export function singleDesBackend(): SingleDesBackend {
  if (singleDesBackendCache === undefined) {
    try {
      const probe = createCipheriv('des-ecb', Buffer.from('133457799bbcdff1', 'hex'), null);
      probe.setAutoPadding(false);
      probe.update(Buffer.alloc(DES_BLOCK_SIZE));
      probe.final();
      singleDesBackendCache = 'native';
    } catch {
      singleDesBackendCache = 'triple-des';
    }
  }
  return singleDesBackendCache;
}

function singleDes(key: Uint8Array, data: Uint8Array, decrypt: boolean): Buffer {
  const k = requireBytes('DES key', key, DES_BLOCK_SIZE);
  if (singleDesBackend() === 'native') return runCipher('des-ecb', k, null, data, decrypt);
  const tripled = Buffer.concat([k, k, k]);
  try {
    return runCipher('des-ede3-ecb', tripled, null, data, decrypt);
  } finally {
    tripled.fill(0);
  }
}

export function desEcbEncrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return singleDes(key, data, false);
}

export function desEcbDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  return singleDes(key, data, true);
}

function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 255) {
    throw invalidInput(`Block size must be 1..255, got ${blockSize}`);
  }
}

/** PKCS#7 (PKCS#5 for 8-byte blocks): always adds 1..blockSize bytes, each equal to the count. */
export function pkcs7Pad(data: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  const n = blockSize - (data.length % blockSize);
  return Buffer.concat([asBuffer(data), Buffer.alloc(n, n)]);
}

/**
 * Removes PKCS#7 padding. The check does not branch on the padding bytes, so decrypted data
 * cannot be probed through timing as a padding oracle; every failure raises the same error.
 */
export function pkcs7Unpad(data: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  if (data.length === 0 || data.length % blockSize !== 0) {
    throw invalidInput(`PKCS#7 data must be a non-empty multiple of ${blockSize} bytes`);
  }
  const n = data[data.length - 1] as number;
  // 1 when 1 <= n <= blockSize, computed without comparisons that the JIT could turn into branches.
  let good = ((n - 1) >>> 31) ^ 1;
  good &= ((blockSize - n) >>> 31) ^ 1;
  for (let i = 1; i <= blockSize; i++) {
    const inPadding = ((n - i) >>> 31) ^ 1; // i <= n
    const differs = ((((data[data.length - i] as number) ^ n) - 1) >>> 31) ^ 1;
    good &= ~(inPadding & differs) & 1;
  }
  if (good !== 1) throw new CardBridgeError('ProtocolError', 'Bad padding');
  return Buffer.from(data.subarray(0, data.length - n));
}

/** ISO/IEC 9797-1 padding method 2: a mandatory 0x80, then zeros up to the block size. */
export function iso9797M2Pad(data: Uint8Array, blockSize: number = DES_BLOCK_SIZE): Buffer {
  checkBlockSize(blockSize);
  const zeros = blockSize - 1 - (data.length % blockSize);
  return Buffer.concat([asBuffer(data), Buffer.from([0x80]), Buffer.alloc(zeros)]);
}
