import { randomBytes } from 'node:crypto';
import { CardBridgeError } from '../../errors.js';
import type { ResponseApdu } from '../../pcsc/apdu.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { statusWordError } from '../../pcsc/status-words.js';
import { type Pkcs1HashName, pkcs1v15SignatureBlock, pkcs1v15Type2Unpad } from '../../crypto/pkcs1.js';
import { type CertificateFacts, certificateFacts } from '../../crypto/certificate-facts.js';
import { MOICA_FID, MOICA_READ_CHUNK, MOICA_SERIAL_LENGTH, MOICA_SMALL_READ_CHUNK, MOICA_VERSION_LENGTH } from './commands.js';
import {
  type Pkcs15KeyUsage,
  type Pkcs15Path,
  decodeCertificateObject,
  decodePrivateKeyObject,
  decodePublicKeyObject,
  derElementLength,
  describeObjectId,
  splitDirectoryRecords,
} from './pkcs15.js';

/**
 * MOICA card drivers: one interface, one small class per card generation (specs/moica-card.md).
 * Drivers speak domain values (serial, certificates, signatures) over a plain `CardTransport`;
 * generation 2's secure channel is a transport wrapper below the driver.
 */

export interface MoicaCardInfo {
  generation: 1 | 2;
  /** 卡號: 16 characters, `^[A-Z]{2}\d{14}$` on citizen cards. */
  serialNumber: string;
  /** e.g. `CHT V32N`. */
  version: string;
}

export interface MoicaCertificate {
  /** CDF object id: `SIGN`, `KEYX`, `CACert`, `ROOTCACert` (hex if not ASCII). */
  id: string;
  label?: string;
  der: Buffer;
  facts: CertificateFacts;
  /** The private key's reference from the PrKDF (user certificates only). */
  keyReference?: number;
  keyUsage?: Pkcs15KeyUsage[];
  /**
   * True when the card's own public-key record (found through the PuKDF) was read and matches
   * the certificate. False says nothing is wrong with the certificate: its key is the one used.
   */
  publicKeyChecked: boolean;
}

/** A PuKDF entry: where the card keeps one public key (spec corrections). */
export interface MoicaPublicKeyEntry {
  /** `SIGN`, `KEYX` (hex if not ASCII), matching the CDF and PrKDF ids. */
  id: string;
  /** Reference for READ RECORD (gen 1: records ref+2, ref+3) or `80 B2 <ref>` (gen 2). */
  keyReference: number;
  /** The key EF, e.g. 3F00 5030 0810 or 0811. */
  path: Pkcs15Path;
}

export interface ListCertificatesOptions {
  /** Compare each user certificate's key with the card's public-key records (default true). */
  crossCheck?: boolean;
}

export interface MoicaCard {
  readonly generation: 1 | 2;
  cardInfo(): Promise<MoicaCardInfo>;
  listCertificates(options?: ListCertificatesOptions): Promise<MoicaCertificate[]>;
  /** The PuKDF entries that say where each public key is. */
  listPublicKeys(): Promise<MoicaPublicKeyEntry[]>;
  /** The modulus from the card's key records (big-endian, no leading zeros). */
  readPublicModulus(key: MoicaPublicKeyEntry): Promise<Buffer>;
  /** Protected VERIFY only (never a plain one); 6–8 digits or `PinLength` before any APDU. */
  verifyPin(pin: string): Promise<void>;
  /**
   * Raw RSA private-key operation on a whole modulus-sized block. Verifies the PIN first, in
   * the same exchange (generation 2 needs a fresh channel and VERIFY for every operation).
   */
  privateOperation(keyReference: number, block: Uint8Array, pin: string): Promise<Buffer>;
  /** PKCS#1 v1.5 signature of a digest. */
  signDigest(keyReference: number, hash: Pkcs1HashName, digest: Uint8Array, pin: string): Promise<Buffer>;
  /** PKCS#1 v1.5 (type 2) decryption; the padding is checked in constant time. */
  decrypt(keyReference: number, ciphertext: Uint8Array, pin: string): Promise<Buffer>;
}

export interface MoicaDriverOptions {
  /** Random bytes for IVs and host challenges; injectable for recorded-vector tests. */
  random?: (length: number) => Buffer;
  /**
   * Where the driver reports what it tolerated (a public-key record that does not match its
   * certificate, a key the PuKDF does not locate). Details hold no PIN and no personal data.
   * Default: a process warning (stderr), so the mismatch is never silent.
   */
  warn?: (message: string, details: Record<string, unknown>) => void;
}

function processWarning(message: string, details: Record<string, unknown>): void {
  process.emitWarning(message, { code: 'CARDBRIDGE_MOICA', detail: JSON.stringify(details) });
}

/** RSA-2048 only (spec §2). */
export const MOICA_MODULUS_LENGTH = 256;

export const MOICA_UNBLOCK_HINT =
  'The PIN is blocked: unblock it at the MOICA CA web site (https://moica.nat.gov.tw) with your 用戶代碼 (user code). Do not try the PIN again.';

/** The product rule of spec §1: 6–8 digits, checked before the card is touched. */
export function assertMoicaPin(pin: unknown): asserts pin is string {
  if (typeof pin !== 'string' || !/^[0-9]{6,8}$/.test(pin)) {
    throw new CardBridgeError('PinLength', 'The PIN of a citizen certificate card is 6 to 8 digits', {
      hint: 'Enter the 6–8 digit PIN of your citizen certificate card (自然人憑證).',
    });
  }
}

/** PIN status words in the project's vocabulary, with what the user can do about them. */
export function pinStatusError(sw: number): CardBridgeError {
  const error = statusWordError(sw, 'PIN verification');
  if (error.code === 'PinBlocked') {
    return new CardBridgeError('PinBlocked', 'The card PIN is blocked', { sw, triesLeft: 0, hint: MOICA_UNBLOCK_HINT });
  }
  if (error.code === 'PinIncorrect' && error.triesLeft !== undefined) {
    const hint =
      error.triesLeft === 1
        ? 'Wrong PIN. One try left: another wrong PIN blocks the card.'
        : `Wrong PIN. ${error.triesLeft} tries left.`;
    return new CardBridgeError('PinIncorrect', `Wrong PIN, ${error.triesLeft} tries left`, { sw, triesLeft: error.triesLeft, hint });
  }
  return error;
}

/** READ BINARY answers that carry data. */
function readOk(response: ResponseApdu): boolean {
  return (response.sw === 0x9000 || response.sw === 0x6282) && response.data.length > 0;
}

/** Largest directory file read before giving up on finding its end. */
const MAX_DIRECTORY_SIZE = 0x4000;
const MAX_CERTIFICATE_SIZE = 0x2000;

/** Errors that say the card's files are not laid out as expected, as opposed to a lost card. */
function isKeyLayoutSurprise(e: unknown): e is CardBridgeError {
  return e instanceof CardBridgeError && (e.code === 'CardError' || e.code === 'ProtocolError');
}

export function reverseWords(bytes: Uint8Array): Buffer {
  if (bytes.length % 4 !== 0) throw new CardBridgeError('ProtocolError', 'Key record is not a whole number of 32-bit words');
  const out = Buffer.alloc(bytes.length);
  for (let i = 0; i < bytes.length; i += 4) out.set(bytes.subarray(i, i + 4), bytes.length - 4 - i);
  return out;
}

export function stripLeadingZeros(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i));
}

function printable(bytes: Buffer): string {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x00 || bytes[end - 1] === 0xff || bytes[end - 1] === 0x20)) end--;
  const text = bytes.subarray(0, end).toString('latin1');
  if (!/^[\x20-\x7e]*$/.test(text)) throw new CardBridgeError('ProtocolError', 'Card information file holds non-ASCII bytes');
  return text;
}

/** What the two generations share; subclasses provide selection, reads and the PIN/key steps. */
export abstract class MoicaCardBase implements MoicaCard {
  abstract readonly generation: 1 | 2;
  protected readonly transport: CardTransport;
  protected readonly random: (length: number) => Buffer;
  protected readonly warn: (message: string, details: Record<string, unknown>) => void;
  #smallReads = false;

  protected constructor(transport: CardTransport, options: MoicaDriverOptions = {}) {
    this.transport = transport;
    this.random = options.random ?? randomBytes;
    this.warn = options.warn ?? processWarning;
  }

  /** Selects a path of FIDs below the card's root (MF or applet); the root itself is implied. */
  protected abstract selectPath(fids: number[]): Promise<void>;
  protected abstract readBinaryCommand(offset: number, length: number): Promise<ResponseApdu>;
  /** FID that starts absolute paths in the CDF (3F00, or 7FFF for the gen-2 applet). */
  protected abstract get pathRoot(): number;
  abstract readPublicModulus(key: MoicaPublicKeyEntry): Promise<Buffer>;
  protected abstract verifyPinChecked(pin: string): Promise<void>;
  protected abstract privateOperationChecked(keyReference: number, block: Buffer, pin: string): Promise<Buffer>;

  /**
   * READ BINARY from the selected EF until `length` bytes or the end of the file. Reads in
   * 0xC8-byte chunks and, after a `69 87`, in 16-byte chunks (spec §2). A `67 00` means the
   * read ran past the end of the file (spec corrections): what is left is read with a shorter
   * Le. With `errorsEndFile` (directory files) any other error status is the end of the file
   * too, as the verified module treats it.
   */
  protected async readBinary(offset: number, length: number, { errorsEndFile = false } = {}): Promise<{ data: Buffer; atEnd: boolean }> {
    const parts: Buffer[] = [];
    let got = 0;
    const done = (atEnd: boolean) => ({ data: Buffer.concat(parts), atEnd });
    while (got < length) {
      const chunk = Math.min(length - got, this.#smallReads ? MOICA_SMALL_READ_CHUNK : MOICA_READ_CHUNK);
      const response = await this.readBinaryCommand(offset + got, chunk);
      if (response.sw === 0x6987 && !this.#smallReads) {
        this.#smallReads = true;
        continue;
      }
      if (response.sw === 0x6700) {
        const rest = await this.readLongestPrefix(offset + got, chunk);
        if (rest.length > 0) parts.push(rest);
        return done(true);
      }
      if (!readOk(response)) {
        if (errorsEndFile || response.sw === 0x6b00 || response.sw === 0x6282) return done(true);
        if (response.sw === 0x9000) throw new CardBridgeError('ProtocolError', 'READ BINARY returned no data');
        throw statusWordError(response.sw, 'READ BINARY');
      }
      parts.push(response.data);
      got += response.data.length;
      if (response.sw === 0x6282 || response.data.length < chunk) return done(true);
    }
    return done(false);
  }

  /**
   * After `67 00` to a read of `tooLong` bytes: the most bytes from `offset` the card will
   * return, found by halving (a failed READ BINARY changes nothing on the card).
   */
  private async readLongestPrefix(offset: number, tooLong: number): Promise<Buffer> {
    let fits = 0;
    let best: Buffer = Buffer.alloc(0);
    let fails = tooLong;
    while (fails - fits > 1) {
      const probe = (fits + fails) >> 1;
      const response = await this.readBinaryCommand(offset, probe);
      if (!readOk(response)) {
        fails = probe;
        continue;
      }
      best = response.data;
      if (response.data.length < probe) break; // the card said where the file ends
      fits = probe;
    }
    return best;
  }

  /**
   * Reads a PKCS#15 directory file record by record until padding (00/FF) or its end; any
   * error status while reading is the end of the file (spec corrections).
   */
  protected async readDirectory(fids: number[]): Promise<Buffer[]> {
    await this.selectPath(fids);
    let bytes = Buffer.alloc(0);
    for (;;) {
      const { data, atEnd } = await this.readBinary(bytes.length, MOICA_READ_CHUNK, { errorsEndFile: true });
      bytes = Buffer.concat([bytes, data]);
      const split = splitDirectoryRecords(bytes, atEnd);
      if (split.complete) return split.records;
      if (bytes.length >= MAX_DIRECTORY_SIZE) throw new CardBridgeError('ProtocolError', 'PKCS#15 directory file has no end');
    }
  }

  /** FIDs below the root from a PKCS#15 path (absolute, or relative to DF 5030). */
  protected pathFids(path: Pkcs15Path): number[] {
    const bytes = path.path;
    if (bytes.length === 0 || bytes.length % 2 !== 0) throw new CardBridgeError('ProtocolError', 'PKCS#15 path is not a list of FIDs');
    const fids: number[] = [];
    for (let i = 0; i < bytes.length; i += 2) fids.push(bytes.readUInt16BE(i));
    if (fids[0] === this.pathRoot || fids[0] === MOICA_FID.MF) return fids.slice(1);
    return [MOICA_FID.PKCS15_DF, ...fids];
  }

  protected async readCertificate(path: Pkcs15Path): Promise<Buffer> {
    await this.selectPath(this.pathFids(path));
    const offset = path.index ?? 0;
    let length = path.length;
    if (length === undefined) {
      // No length in the CDF: the certificate's own header (30 82 LL LL) gives it.
      const head = await this.readBinary(offset, 4);
      length = derElementLength(head.data);
      if (length === undefined) throw new CardBridgeError('ProtocolError', 'No certificate at the CDF path');
    }
    if (length > MAX_CERTIFICATE_SIZE) throw new CardBridgeError('ProtocolError', `Certificate length ${length} is implausible`);
    const { data } = await this.readBinary(offset, length);
    if (data.length !== length) throw new CardBridgeError('ProtocolError', 'Certificate file ends early');
    return data;
  }

  async cardInfo(): Promise<MoicaCardInfo> {
    await this.selectPath([MOICA_FID.INFO_DF, MOICA_FID.SERIAL]);
    const serial = printable((await this.readBinary(0, MOICA_SERIAL_LENGTH)).data);
    await this.selectPath([MOICA_FID.INFO_DF, MOICA_FID.VERSION]);
    const version = printable((await this.readBinary(0, MOICA_VERSION_LENGTH)).data);
    return { generation: this.generation, serialNumber: serial, version };
  }

  async listPublicKeys(): Promise<MoicaPublicKeyEntry[]> {
    const entries: MoicaPublicKeyEntry[] = [];
    for (const object of (await this.readDirectory([MOICA_FID.PKCS15_DF, MOICA_FID.PUKDF])).map(decodePublicKeyObject)) {
      const id = describeObjectId(object.id);
      if (object.keyReference === undefined || object.path === undefined) {
        this.warn(`PuKDF entry ${id} gives no key reference or path; its key is not checked`, { id, generation: this.generation });
        continue;
      }
      entries.push({ id, keyReference: object.keyReference, path: object.path });
    }
    return entries;
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<MoicaCertificate[]> {
    const cdf = (await this.readDirectory([MOICA_FID.PKCS15_DF, MOICA_FID.CDF])).map(decodeCertificateObject);
    const prkdf = (await this.readDirectory([MOICA_FID.PKCS15_DF, MOICA_FID.PRKDF])).map(decodePrivateKeyObject);
    const publicKeys = (options.crossCheck ?? true) ? await this.publicKeysTolerantly() : [];
    const out: MoicaCertificate[] = [];
    for (const object of cdf) {
      const der = await this.readCertificate(object.path);
      const facts = certificateFacts(der);
      const certificate: MoicaCertificate = { id: describeObjectId(object.id), der, facts, publicKeyChecked: false };
      if (object.label !== undefined) certificate.label = object.label;
      const key = prkdf.find((k) => k.id.equals(object.id));
      if (key?.keyReference !== undefined) {
        certificate.keyReference = key.keyReference;
        certificate.keyUsage = key.usage;
        if (options.crossCheck ?? true) certificate.publicKeyChecked = await this.crossCheck(certificate, publicKeys);
      }
      out.push(certificate);
    }
    return out;
  }

  /** The PuKDF entries, or none when the PuKDF cannot be read: listing never fails on it. */
  private async publicKeysTolerantly(): Promise<MoicaPublicKeyEntry[]> {
    try {
      return await this.listPublicKeys();
    } catch (e) {
      if (!isKeyLayoutSurprise(e)) throw e;
      this.warn(`The PuKDF could not be read (${e.message}); certificate keys are not checked`, { generation: this.generation });
      return [];
    }
  }

  /**
   * Certificate key vs. the card's key records located through the PuKDF. The certificate's
   * key is what every caller uses; this check only reports. A layout the driver did not expect
   * (no entry, an unreadable or odd record, another modulus) is logged and leaves
   * `publicKeyChecked` false; it never makes certificate listing fail (spec corrections).
   */
  private async crossCheck(certificate: MoicaCertificate, publicKeys: MoicaPublicKeyEntry[]): Promise<boolean> {
    const expected = certificate.facts.publicKey?.modulus;
    if (!expected) return false;
    const entry = publicKeys.find((k) => k.id === certificate.id);
    const details = { id: certificate.id, generation: this.generation };
    if (!entry) {
      this.warn(`The card has no PuKDF entry for ${certificate.id}; its certificate key is used unchecked`, details);
      return false;
    }
    const where = { ...details, keyReference: entry.keyReference, path: entry.path.path.toString('hex').toUpperCase() };
    let modulus: Buffer;
    try {
      modulus = await this.readPublicModulus(entry);
    } catch (e) {
      if (!isKeyLayoutSurprise(e)) throw e;
      this.warn(`The card's ${certificate.id} public-key record could not be read (${e.message}); the certificate key is used`, where);
      return false;
    }
    if (!modulus.equals(expected)) {
      this.warn(`The card's ${certificate.id} public-key record does not match its certificate; the certificate key is used`, where);
      return false;
    }
    return true;
  }

  async verifyPin(pin: string): Promise<void> {
    assertMoicaPin(pin);
    await this.verifyPinChecked(pin);
  }

  async privateOperation(keyReference: number, block: Uint8Array, pin: string): Promise<Buffer> {
    assertMoicaPin(pin);
    if (!Number.isInteger(keyReference) || keyReference < 0 || keyReference > 0xff) {
      throw new CardBridgeError('InvalidInput', `Key reference must be a byte, got ${keyReference}`);
    }
    if (!(block instanceof Uint8Array) || block.length !== MOICA_MODULUS_LENGTH) {
      throw new CardBridgeError('InvalidInput', `The private-key input block must be ${MOICA_MODULUS_LENGTH} bytes`);
    }
    const result = await this.privateOperationChecked(keyReference, Buffer.from(block), pin);
    if (result.length !== MOICA_MODULUS_LENGTH) {
      throw new CardBridgeError('ProtocolError', `The card returned ${result.length} result bytes, not ${MOICA_MODULUS_LENGTH}`);
    }
    return result;
  }

  async signDigest(keyReference: number, hash: Pkcs1HashName, digest: Uint8Array, pin: string): Promise<Buffer> {
    assertMoicaPin(pin);
    return this.privateOperation(keyReference, pkcs1v15SignatureBlock(MOICA_MODULUS_LENGTH, hash, digest), pin);
  }

  async decrypt(keyReference: number, ciphertext: Uint8Array, pin: string): Promise<Buffer> {
    assertMoicaPin(pin);
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== MOICA_MODULUS_LENGTH) {
      throw new CardBridgeError('InvalidInput', `Ciphertext must be ${MOICA_MODULUS_LENGTH} bytes`);
    }
    const block = await this.privateOperation(keyReference, ciphertext, pin);
    try {
      return pkcs1v15Type2Unpad(block, MOICA_MODULUS_LENGTH);
    } finally {
      block.fill(0);
    }
  }

  /** Collects a private-operation result: first bytes from the last `EA`, the rest via `C1`. */
  protected async collectResult(first: Buffer, fetch: (offset: number, length: number) => Promise<ResponseApdu>): Promise<Buffer> {
    const parts = [first];
    let got = first.length;
    while (got < MOICA_MODULUS_LENGTH) {
      const response = await fetch(got, Math.min(0x80, MOICA_MODULUS_LENGTH - got));
      if (response.sw !== 0x9000) throw statusWordError(response.sw, 'Private-key operation (result)');
      if (response.data.length === 0) throw new CardBridgeError('ProtocolError', 'The card returned no more result bytes');
      parts.push(response.data);
      got += response.data.length;
    }
    return Buffer.concat(parts).subarray(0, MOICA_MODULUS_LENGTH);
  }
}
