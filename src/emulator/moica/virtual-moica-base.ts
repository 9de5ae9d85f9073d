import { type KeyObject, constants, privateDecrypt, randomBytes } from 'node:crypto';
import { type CommandApdu, decodeCommand, encodeResponse } from '../../pcsc/apdu.js';
import { moicaPinBuffer } from '../../crypto/moica-pin-block.js';
import { constantTimeEqual } from '../../crypto/bytes.js';
import { MOICA_FID } from '../../cards/moica/commands.js';
import {
  type Pkcs15Path,
  encodeCertificateObject,
  encodeDirectoryFile,
  encodePrivateKeyObject,
  encodePublicKeyObject,
} from '../../cards/moica/pkcs15.js';
import type { VirtualCard } from '../virtual-card.js';
import type { MoicaTestPki } from './test-pki.js';

/**
 * What both virtual MOICA generations share: the file system of specs/moica-card.md (DF 0900
 * with serial and version, DF 5030 with PrKDF, PuKDF, CDF, the shared certificate EF and the
 * key EFs), the PIN with its retry counter, and raw RSA private-key operations with real keys
 * from the test PKI. Every APDU received is recorded so tests can prove what crossed the wire.
 *
 * The model follows the spec's corrections from real cards, strictly, so that a driver built
 * on the older reading fails here: public keys sit where the PuKDF says (by default in EF 0811
 * or under a key reference other than the PrKDF's), the version EF is 24 bytes and a READ
 * BINARY past the end of a file answers `67 00`, a private operation returns at most 128 bytes
 * so `80 C1` is always needed.
 */

/** Where one public key's records are: the EF (below DF 5030) and the READ RECORD reference. */
export interface PublicKeyLocation {
  fid: number;
  ref: number;
}

export interface VirtualMoicaOptions {
  /** Defaults to `TP` + 14 digits. */
  serialNumber?: string;
  version?: string;
  /** The right PIN (default 123456). */
  pin?: string;
  /** Retry counter when the PIN is not blocked (default 3). */
  maxTries?: number;
  /** Tries left at power-up (0 makes a blocked card). */
  triesLeft?: number;
  /** Key references of the SIGN and KEYX keys, as the PrKDF announces them. */
  keyRefs?: { sign: number; keyx: number };
  /** Random bytes (challenges); injectable for recorded-vector tests. */
  random?: (length: number) => Buffer;
  /**
   * Where the PuKDF says the SIGN and KEYX public keys are. The defaults differ from the
   * PrKDF's key references and EF on purpose: a driver must follow the PuKDF.
   */
  publicKeys?: { sign: PublicKeyLocation; keyx: PublicKeyLocation };
  /** Put another key's modulus in the key EF (cross-check tests). */
  wrongPublicKeyRecord?: boolean;
  /**
   * Size of the PKCS#15 directory files: a number (records, then padding) or 'exact' (the
   * records and nothing after them, so reading on meets an error status). Default 0x200.
   */
  directoryFileSize?: number | 'exact';
  /** Status of a READ BINARY that starts at or past the end of a file (default `6B 00`). */
  pastEndStatus?: number;
  /** Size of EF 0905 (default 24, as on real cards). */
  versionFileSize?: number;
  /** A PuKDF without entries (a card whose public keys the driver cannot locate). */
  emptyPukdf?: boolean;
}

export type VirtualFile =
  | { kind: 'DF'; fid: number; children: VirtualFile[]; parent?: VirtualFile }
  | { kind: 'EF'; fid: number; content: Buffer; parent?: VirtualFile };

export type VirtualDf = Extract<VirtualFile, { kind: 'DF' }>;
export type VirtualEf = Extract<VirtualFile, { kind: 'EF' }>;

/** Offsets of the four certificates in EF 08F2, as observed on real cards. */
export const CERTIFICATE_OFFSETS = { root: 0x0000, issuing: 0x0700, sign: 0x0e00, encrypt: 0x1500 } as const;
const CERTIFICATE_SLOT = 0x0700;
const DIRECTORY_FILE_SIZE = 0x0200;
/** EF 0905: the version string, space-free padding with 00 up to 24 bytes (spec corrections). */
export const VERSION_FILE_SIZE = 24;
/** Most result bytes `80 EA 02` returns on a real card (spec corrections). */
export const MAX_FIRST_RESULT_LENGTH = 0x80;

export const SW = {
  OK: 0x9000,
  END_OF_FILE: 0x6282,
  WRONG_LENGTH: 0x6700,
  SECURITY: 0x6982,
  BLOCKED: 0x6983,
  CONDITIONS: 0x6985,
  NO_EF: 0x6986,
  SM_DATA: 0x6988,
  WRONG_DATA: 0x6a80,
  NOT_FOUND: 0x6a82,
  RECORD_NOT_FOUND: 0x6a83,
  REF_NOT_FOUND: 0x6a88,
  WRONG_P1P2: 0x6b00,
  INS: 0x6d00,
  CLA: 0x6e00,
} as const;

export function reply(sw: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  return encodeResponse({ data: Buffer.from(data), sw });
}

function df(fid: number, children: VirtualFile[]): VirtualDf {
  const node: VirtualDf = { kind: 'DF', fid, children };
  for (const child of children) child.parent = node;
  return node;
}

function ef(fid: number, content: Buffer): VirtualEf {
  return { kind: 'EF', fid, content };
}

export function findChild(dir: VirtualDf, fid: number): VirtualFile | undefined {
  return dir.children.find((c) => c.fid === fid);
}

export interface CardKey {
  /** The private key's reference (PrKDF, `80 EA` P2). */
  ref: number;
  privateKey: KeyObject;
  /** The modulus the public-key records hold (another key's with `wrongPublicKeyRecord`). */
  modulus: Buffer;
  /** Where the public key's records are (PuKDF). */
  publicKey: PublicKeyLocation;
}

function modulusOf(key: KeyObject): Buffer {
  const n = key.export({ format: 'jwk' }).n;
  if (!n) throw new Error('not an RSA key');
  const bytes = Buffer.from(n, 'base64url');
  return Buffer.concat([Buffer.alloc(Math.max(0, 256 - bytes.length)), bytes]);
}

export abstract class VirtualMoicaCard implements VirtualCard {
  abstract readonly atr: Buffer;
  readonly generation: 1 | 2;
  /** Every command APDU received, as sent. */
  readonly received: Buffer[] = [];
  /** Plain (unprotected) VERIFY commands received: must stay 0 with cardbridge. */
  plainVerifyCount = 0;
  resets = 0;
  readonly serialNumber: string;
  readonly version: string;
  readonly keyRefs: { sign: number; keyx: number };
  protected readonly random: (length: number) => Buffer;
  protected readonly root: VirtualDf;
  protected readonly keys: CardKey[];
  readonly #pin: Buffer;
  readonly #maxTries: number;
  #triesLeft: number;
  protected verified = false;
  /** First half of a private-operation input block, then the result. */
  protected pendingHalf: { keyRef: number; data: Buffer } | undefined;
  protected result: Buffer | undefined;

  readonly publicKeyLocations: { sign: PublicKeyLocation; keyx: PublicKeyLocation };
  readonly #pastEndStatus: number;

  protected constructor(
    generation: 1 | 2,
    pki: MoicaTestPki,
    options: VirtualMoicaOptions,
    defaults: { keyRefs: { sign: number; keyx: number }; publicKeys: { sign: PublicKeyLocation; keyx: PublicKeyLocation } },
  ) {
    this.generation = generation;
    this.serialNumber = options.serialNumber ?? 'TP03000012345678';
    this.version = options.version ?? (generation === 1 ? 'CHT V32N' : 'CHT V5.2');
    this.keyRefs = options.keyRefs ?? defaults.keyRefs;
    this.publicKeyLocations = options.publicKeys ?? defaults.publicKeys;
    this.#pastEndStatus = options.pastEndStatus ?? SW.WRONG_P1P2;
    this.random = options.random ?? randomBytes;
    this.#pin = moicaPinBuffer(options.pin ?? '123456');
    this.#maxTries = options.maxTries ?? 3;
    this.#triesLeft = options.triesLeft ?? this.#maxTries;
    this.keys = [
      { ref: this.keyRefs.sign, privateKey: pki.sign.privateKey, modulus: modulusOf(pki.sign.publicKey), publicKey: this.publicKeyLocations.sign },
      { ref: this.keyRefs.keyx, privateKey: pki.encrypt.privateKey, modulus: modulusOf(pki.encrypt.publicKey), publicKey: this.publicKeyLocations.keyx },
    ];
    if (options.wrongPublicKeyRecord) this.keys[0]!.modulus = this.keys[1]!.modulus;
    this.root = this.buildFileSystem(pki, {
      directorySize: options.directoryFileSize ?? DIRECTORY_FILE_SIZE,
      versionSize: options.versionFileSize ?? VERSION_FILE_SIZE,
      emptyPukdf: options.emptyPukdf ?? false,
    });
  }

  get triesLeft(): number {
    return this.#triesLeft;
  }

  get pinVerified(): boolean {
    return this.verified;
  }

  /** The first FID of paths in the CDF: 3F00 (gen 1) or 7FFF (the applet, gen 2). */
  protected abstract get pathRoot(): number;
  /** A key EF's content for the public keys located in it (records on gen 1, halves on gen 2). */
  protected abstract keyEfContent(keys: CardKey[]): Buffer;

  /** The public key whose records are in EF `fid` under reference `ref`. */
  protected publicKeyAt(fid: number, ref: number): CardKey | undefined {
    return this.keys.find((k) => k.publicKey.fid === fid && k.publicKey.ref === ref);
  }

  private buildFileSystem(
    pki: MoicaTestPki,
    { directorySize, versionSize, emptyPukdf }: { directorySize: number | 'exact'; versionSize: number; emptyPukdf: boolean },
  ): VirtualDf {
    const certificates = Buffer.alloc(CERTIFICATE_OFFSETS.encrypt + CERTIFICATE_SLOT, 0xff);
    const place = (der: Buffer, offset: number) => {
      if (der.length > CERTIFICATE_SLOT) throw new RangeError(`Certificate of ${der.length} bytes does not fit its 0x700-byte slot`);
      der.copy(certificates, offset);
    };
    place(pki.root.der, CERTIFICATE_OFFSETS.root);
    place(pki.issuing.der, CERTIFICATE_OFFSETS.issuing);
    place(pki.sign.der, CERTIFICATE_OFFSETS.sign);
    place(pki.encrypt.der, CERTIFICATE_OFFSETS.encrypt);

    const path = (...fids: number[]) => Buffer.from(fids.flatMap((f) => [f >> 8, f & 0xff]));
    const certEf = path(this.pathRoot, MOICA_FID.PKCS15_DF, MOICA_FID.CERTIFICATES);
    const keyEf = path(this.pathRoot, MOICA_FID.PKCS15_DF, MOICA_FID.KEYS);
    // User certificates carry their length; the CA entries do not, so readers must use the
    // certificate's own DER header (both forms are seen on cards).
    const at = (index: number, length?: number): Pkcs15Path => (length === undefined ? { path: certEf, index } : { path: certEf, index, length });
    const cdf = [
      encodeCertificateObject({ label: 'Signature certificate', id: Buffer.from('SIGN'), path: at(CERTIFICATE_OFFSETS.sign, pki.sign.der.length) }),
      encodeCertificateObject({ label: 'Encryption certificate', id: Buffer.from('KEYX'), path: at(CERTIFICATE_OFFSETS.encrypt, pki.encrypt.der.length) }),
      encodeCertificateObject({ label: 'CA certificate', id: Buffer.from('CACert'), authority: true, path: at(CERTIFICATE_OFFSETS.issuing) }),
      encodeCertificateObject({ label: 'Root CA certificate', id: Buffer.from('ROOTCACert'), authority: true, path: at(CERTIFICATE_OFFSETS.root) }),
    ];
    const prkdf = [
      encodePrivateKeyObject({
        label: 'Signature key',
        authId: Buffer.from([0x01]),
        id: Buffer.from('SIGN'),
        usage: ['sign', 'signRecover', 'nonRepudiation'],
        keyReference: this.keyRefs.sign,
        path: { path: keyEf },
        modulusLength: 2048,
      }),
      encodePrivateKeyObject({
        label: 'Encryption key',
        authId: Buffer.from([0x01]),
        id: Buffer.from('KEYX'),
        usage: ['decrypt', 'unwrap'],
        keyReference: this.keyRefs.keyx,
        path: { path: keyEf },
        modulusLength: 2048,
      }),
    ];
    const pukdf = (emptyPukdf ? [] : (['sign', 'keyx'] as const)).map((which, i) =>
      encodePublicKeyObject({
        label: which === 'sign' ? 'Signature public key' : 'Encryption public key',
        id: Buffer.from(which === 'sign' ? 'SIGN' : 'KEYX'),
        usage: which === 'sign' ? ['verify', 'verifyRecover'] : ['encrypt', 'wrap'],
        keyReference: this.keys[i]!.publicKey.ref,
        path: { path: path(this.pathRoot, MOICA_FID.PKCS15_DF, this.keys[i]!.publicKey.fid) },
        modulusLength: 2048,
      }),
    );
    const directory = (records: Buffer[], pad: number) =>
      encodeDirectoryFile(records, directorySize === 'exact' ? records.reduce((n, r) => n + r.length, 0) : directorySize, pad);
    // The private-key EF 0810 always exists (VERIFY and `80 EA` select it); it and any other
    // key EF the PuKDF names hold the public keys located there.
    const keyEfs = [...new Set([MOICA_FID.KEYS as number, ...this.keys.map((k) => k.publicKey.fid)])];
    const version = Buffer.alloc(versionSize, 0x00);
    version.write(this.version.slice(0, versionSize), 'latin1');
    return df(this.pathRoot, [
      df(MOICA_FID.INFO_DF, [ef(MOICA_FID.SERIAL, Buffer.from(this.serialNumber, 'latin1')), ef(MOICA_FID.VERSION, version)]),
      df(MOICA_FID.PKCS15_DF, [
        ef(MOICA_FID.PRKDF, directory(prkdf, 0x00)),
        ef(MOICA_FID.PUKDF, directory(pukdf, 0x00)),
        ef(MOICA_FID.CDF, directory(cdf, 0xff)),
        ef(MOICA_FID.CERTIFICATES, certificates),
        ...keyEfs.map((fid) => ef(fid, this.keyEfContent(this.keys.filter((k) => k.publicKey.fid === fid)))),
      ]),
    ]);
  }

  reset(): void {
    this.resets++;
    this.verified = false;
    this.pendingHalf = undefined;
    this.result = undefined;
    this.onReset();
  }

  protected abstract onReset(): void;
  protected abstract handle(command: CommandApdu): Buffer;

  process(raw: Buffer): Buffer {
    this.received.push(Buffer.from(raw));
    let command: CommandApdu;
    try {
      command = decodeCommand(raw);
    } catch {
      return reply(SW.WRONG_LENGTH);
    }
    // A plain VERIFY is refused and costs a try, as reported for real cards (spec §2).
    if (command.ins === 0x20 && (command.cla === 0x00 || command.cla === 0x80)) {
      this.plainVerifyCount++;
      this.verified = false;
      if (this.#triesLeft === 0) return reply(SW.BLOCKED);
      this.#triesLeft--;
      return reply(0x63c0 | this.#triesLeft);
    }
    return this.handle(command);
  }

  /** Compares a received PIN buffer with the card's and runs the retry counter. */
  protected checkPin(pinBuffer: Buffer): Buffer {
    if (this.#triesLeft === 0) return reply(SW.BLOCKED);
    if (pinBuffer.length === this.#pin.length && constantTimeEqual(pinBuffer, this.#pin)) {
      this.#triesLeft = this.#maxTries;
      this.verified = true;
      return reply(SW.OK);
    }
    this.verified = false;
    this.#triesLeft--;
    return reply(0x63c0 | this.#triesLeft);
  }

  /**
   * A VERIFY the card could not read (gen 1: `6A 88` for another batch's cryptogram). The spec's
   * corrections say every VERIFY sent may cost a try; the model takes the pessimistic side.
   */
  protected refuseVerify(sw: number): Buffer {
    if (this.#triesLeft === 0) return reply(SW.BLOCKED);
    this.verified = false;
    this.#triesLeft--;
    return reply(sw);
  }

  protected keyByRef(ref: number): CardKey | undefined {
    return this.keys.find((k) => k.ref === ref);
  }

  /** Runs `80 EA` (first or last half); returns the result on the last half. */
  protected privateOperationPart(command: CommandApdu): { sw: number; result?: Buffer } {
    if (!this.verified) return { sw: SW.SECURITY };
    const data = Buffer.from(command.data ?? []);
    const key = this.keyByRef(command.p2);
    if (!key) return { sw: SW.REF_NOT_FOUND };
    if (data.length !== 128) return { sw: SW.WRONG_LENGTH };
    if (command.p1 === 0x82) {
      this.pendingHalf = { keyRef: command.p2, data };
      this.result = undefined;
      return { sw: SW.OK };
    }
    if (command.p1 !== 0x02) return { sw: SW.WRONG_P1P2 };
    const first = this.pendingHalf;
    this.pendingHalf = undefined;
    if (!first || first.keyRef !== command.p2) return { sw: SW.CONDITIONS };
    const block = Buffer.concat([first.data, data]);
    if (Buffer.compare(block, key.modulus) >= 0) return { sw: SW.WRONG_DATA };
    const out = privateDecrypt({ key: key.privateKey, padding: constants.RSA_NO_PADDING }, block);
    this.result = Buffer.concat([Buffer.alloc(256 - out.length), out]);
    return { sw: SW.OK, result: this.result };
  }

  /** `80 C1 <offset> <length>`: more bytes of the last result. */
  protected resultBytes(command: CommandApdu): Buffer {
    if (!this.result) return reply(SW.CONDITIONS);
    const offset = (command.p1 << 8) | command.p2;
    if (offset >= this.result.length) return reply(SW.WRONG_P1P2);
    return reply(SW.OK, this.result.subarray(offset, offset + (command.le ?? 256)));
  }

  /**
   * READ BINARY against an EF, as strict as a real card: a read that would run past the end of
   * the file is refused with `67 00` (the spec's corrections: 0905 read with Le 32), one that
   * starts at or past the end gets `pastEndStatus` (6B 00 unless a test asks for another).
   */
  protected readBinary(file: VirtualFile | undefined, command: CommandApdu, maxLength = 256): Buffer {
    if (!file || file.kind !== 'EF') return reply(SW.NO_EF);
    if (command.p1 & 0x80) return reply(SW.WRONG_P1P2);
    const offset = (command.p1 << 8) | command.p2;
    const wanted = command.le ?? 256;
    if (wanted > maxLength) return reply(0x6987);
    if (offset >= file.content.length) return reply(this.#pastEndStatus);
    if (offset + wanted > file.content.length) return reply(SW.WRONG_LENGTH);
    return reply(SW.OK, file.content.subarray(offset, offset + wanted));
  }
}
