import { AES_BLOCK_SIZE, aesCbcEncrypt, aesEcbEncrypt } from './aes.js';
import { aesCmac } from './aes-cmac.js';
import { constantTimeEqual, invalidInput, requireByte, requireBytes } from './bytes.js';
import { iso9797M2Pad } from './des.js';
import { CardBridgeError } from '../errors.js';

/**
 * GlobalPlatform SCP03 (Card Specification Amendment D) as pure computation: no I/O, the card
 * layer sends what these functions build. Only what the MOICA generation-2 card needs is
 * modelled: 8-byte challenges and cryptograms, C-MAC with C-DECRYPTION, no R-MAC / R-ENC.
 */

/** Derivation constants of the SCP03 KDF (Amendment D, table 4-1). */
export const SCP03_DERIVATION = {
  cardCryptogram: 0x00,
  hostCryptogram: 0x01,
  sEnc: 0x04,
  sMac: 0x06,
  sRmac: 0x07,
} as const;

/** Security levels this module can wrap for (the P1 of EXTERNAL AUTHENTICATE). */
export const SCP03_SECURITY_LEVEL = {
  cMac: 0x01,
  cMacCDec: 0x03,
} as const;

export const SCP03_CHALLENGE_LENGTH = 8;
export const SCP03_CRYPTOGRAM_LENGTH = 8;
export const SCP03_MAC_LENGTH = 8;

/**
 * One input block of the SCP03 KDF (NIST SP 800-108 counter mode with AES-CMAC as PRF):
 * 11 zero bytes ‖ constant ‖ 00 ‖ L (2 bytes, in bits) ‖ counter ‖ context.
 */
export function scp03KdfInput(constant: number, lengthBits: number, counter: number, context: Uint8Array): Buffer {
  requireByte('KDF constant', constant);
  requireByte('KDF counter', counter);
  if (!Number.isInteger(lengthBits) || lengthBits <= 0 || lengthBits > 0xffff || lengthBits % 8 !== 0) {
    throw invalidInput(`KDF output length must be a positive multiple of 8 bits, got ${lengthBits}`);
  }
  const head = Buffer.alloc(16);
  head[11] = constant;
  head[12] = 0x00;
  head.writeUInt16BE(lengthBits, 13);
  head[15] = counter;
  return Buffer.concat([head, requireBytes('KDF context', context)]);
}

/** SCP03 KDF: concatenated AES-CMAC outputs for counters 1, 2, ... truncated to `lengthBits`. */
export function scp03Kdf(key: Uint8Array, constant: number, lengthBits: number, context: Uint8Array): Buffer {
  const blocks = Math.ceil(lengthBits / 128);
  if (blocks > 0xff) throw invalidInput('KDF output too long');
  const parts: Buffer[] = [];
  for (let counter = 1; counter <= blocks; counter++) {
    parts.push(aesCmac(key, scp03KdfInput(constant, lengthBits, counter, context)));
  }
  const out = Buffer.concat(parts);
  const result = Buffer.from(out.subarray(0, lengthBits / 8));
  out.fill(0);
  return result;
}

export interface Scp03StaticKeys {
  kEnc: Uint8Array;
  kMac: Uint8Array;
}

export interface Scp03SessionKeys {
  sEnc: Buffer;
  sMac: Buffer;
}

function challengeContext(hostChallenge: Uint8Array, cardChallenge: Uint8Array): Buffer {
  return Buffer.concat([
    requireBytes('host challenge', hostChallenge, SCP03_CHALLENGE_LENGTH),
    requireBytes('card challenge', cardChallenge, SCP03_CHALLENGE_LENGTH),
  ]);
}

/** Session keys have the length of the static keys they come from (L = key length in bits). */
export function deriveScp03SessionKeys(
  keys: Scp03StaticKeys,
  hostChallenge: Uint8Array,
  cardChallenge: Uint8Array,
): Scp03SessionKeys {
  const kEnc = requireBytes('K-ENC', keys.kEnc, 16, 24, 32);
  const kMac = requireBytes('K-MAC', keys.kMac, 16, 24, 32);
  const context = challengeContext(hostChallenge, cardChallenge);
  return {
    sEnc: scp03Kdf(kEnc, SCP03_DERIVATION.sEnc, kEnc.length * 8, context),
    sMac: scp03Kdf(kMac, SCP03_DERIVATION.sMac, kMac.length * 8, context),
  };
}

export function scp03CardCryptogram(sMac: Uint8Array, hostChallenge: Uint8Array, cardChallenge: Uint8Array): Buffer {
  return scp03Kdf(sMac, SCP03_DERIVATION.cardCryptogram, 64, challengeContext(hostChallenge, cardChallenge));
}

export function scp03HostCryptogram(sMac: Uint8Array, hostChallenge: Uint8Array, cardChallenge: Uint8Array): Buffer {
  return scp03Kdf(sMac, SCP03_DERIVATION.hostCryptogram, 64, challengeContext(hostChallenge, cardChallenge));
}

/** C-DECRYPTION ICV: AES-ECB(S-ENC, 12 zero bytes ‖ 32-bit big-endian encryption counter). */
export function scp03CommandIv(sEnc: Uint8Array, counter: number): Buffer {
  if (!Number.isInteger(counter) || counter < 0 || counter > 0xffffffff) {
    throw invalidInput(`Encryption counter out of range: ${counter}`);
  }
  const block = Buffer.alloc(AES_BLOCK_SIZE);
  block.writeUInt32BE(counter, 12);
  return aesEcbEncrypt(sEnc, block);
}

/** Command data encryption: AES-CBC(S-ENC, ICV, data ‖ 80 00.. to a 16-byte multiple). */
export function scp03EncryptCommandData(sEnc: Uint8Array, counter: number, data: Uint8Array): Buffer {
  const padded = iso9797M2Pad(data, AES_BLOCK_SIZE);
  const encrypted = aesCbcEncrypt(sEnc, scp03CommandIv(sEnc, counter), padded);
  padded.fill(0);
  return encrypted;
}

/**
 * Full 16-byte C-MAC over MCV ‖ CLA INS P1 P2 Lc ‖ data, where the header is already the one
 * sent (CLA with the secure-messaging bit, Lc counting the 8 MAC bytes). The first 8 bytes go
 * on the wire; all 16 become the next MCV.
 */
export function scp03CommandMac(
  sMac: Uint8Array,
  mcv: Uint8Array,
  header: { cla: number; ins: number; p1: number; p2: number; lc: number },
  data: Uint8Array,
): Buffer {
  const h = Buffer.from([
    requireByte('CLA', header.cla),
    requireByte('INS', header.ins),
    requireByte('P1', header.p1),
    requireByte('P2', header.p2),
    requireByte('Lc', header.lc),
  ]);
  return aesCmac(sMac, Buffer.concat([requireBytes('MCV', mcv, AES_BLOCK_SIZE), h, requireBytes('data', data)]));
}

export interface Scp03Command {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data?: Uint8Array;
}

/** Header and secured data; the caller adds Lc (= data.length) and any Le to build the APDU. */
export interface Scp03WrappedCommand {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Buffer;
}

type SessionState = 'initialized' | 'card-verified' | 'authenticated' | 'closed';

/**
 * One SCP03 session, from INITIALIZE UPDATE's challenges to the last wrapped command. Order
 * is enforced: the card cryptogram must check out before EXTERNAL AUTHENTICATE is built, and
 * nothing is wrapped before that, so a PIN can never be sent to a card that failed to prove
 * it holds the keys. A failed check closes the session; open a new one.
 */
export class Scp03Session {
  readonly #sEnc: Buffer;
  readonly #sMac: Buffer;
  readonly #hostChallenge: Buffer;
  readonly #cardChallenge: Buffer;
  #mcv: Buffer = Buffer.alloc(AES_BLOCK_SIZE);
  #encryptionCounter = 0;
  #securityLevel: number = SCP03_SECURITY_LEVEL.cMacCDec;
  #state: SessionState = 'initialized';

  constructor(staticKeys: Scp03StaticKeys, hostChallenge: Uint8Array, cardChallenge: Uint8Array) {
    const { sEnc, sMac } = deriveScp03SessionKeys(staticKeys, hostChallenge, cardChallenge);
    this.#sEnc = sEnc;
    this.#sMac = sMac;
    // Copies, so a caller reusing its buffers cannot change the session's context later.
    this.#hostChallenge = Buffer.from(hostChallenge);
    this.#cardChallenge = Buffer.from(cardChallenge);
  }

  /** Number of data-carrying commands wrapped so far (the last counter value used). */
  get encryptionCounter(): number {
    return this.#encryptionCounter;
  }

  get securityLevel(): number {
    return this.#securityLevel;
  }

  get isAuthenticated(): boolean {
    return this.#state === 'authenticated';
  }

  /** Throws 'ProtocolError' (and closes the session) unless the card proved it has the keys. */
  verifyCardCryptogram(cryptogram: Uint8Array): void {
    this.#requireState('initialized', 'verifyCardCryptogram');
    const received = requireBytes('card cryptogram', cryptogram, SCP03_CRYPTOGRAM_LENGTH);
    const expected = scp03CardCryptogram(this.#sMac, this.#hostChallenge, this.#cardChallenge);
    if (!constantTimeEqual(expected, received)) {
      this.destroy();
      throw new CardBridgeError('ProtocolError', 'Secure channel: card cryptogram does not match', {
        hint: 'The card did not prove it holds the expected keys; it may not be a genuine MOICA card.',
      });
    }
    this.#state = 'card-verified';
  }

  hostCryptogram(): Buffer {
    this.#requireNotClosed();
    return scp03HostCryptogram(this.#sMac, this.#hostChallenge, this.#cardChallenge);
  }

  /**
   * EXTERNAL AUTHENTICATE `84 82 <level> 00` with data = host cryptogram ‖ C-MAC. It is MAC'd
   * but never encrypted and does not use an encryption counter value; its full 16-byte CMAC
   * seeds the MCV for the commands that follow.
   */
  externalAuthenticateMac(securityLevel: number = SCP03_SECURITY_LEVEL.cMacCDec): Scp03WrappedCommand {
    this.#requireState('card-verified', 'externalAuthenticateMac');
    if (securityLevel !== SCP03_SECURITY_LEVEL.cMac && securityLevel !== SCP03_SECURITY_LEVEL.cMacCDec) {
      throw invalidInput(`Unsupported SCP03 security level 0x${securityLevel.toString(16)} (no R-MAC/R-ENC support)`);
    }
    this.#securityLevel = securityLevel;
    const hostCryptogram = this.hostCryptogram();
    const secured = this.#macAndChain({ cla: 0x84, ins: 0x82, p1: securityLevel, p2: 0x00 }, hostCryptogram);
    this.#state = 'authenticated';
    return secured;
  }

  /**
   * Secures one command: CLA | 0x04, data (if any) encrypted at level 3, then the 8-byte C-MAC.
   * A command without data is only MAC'd and leaves the encryption counter alone.
   */
  wrap(command: Scp03Command): Scp03WrappedCommand {
    this.#requireState('authenticated', 'wrap');
    const cla = requireByte('CLA', command.cla);
    const ins = requireByte('INS', command.ins);
    const p1 = requireByte('P1', command.p1);
    const p2 = requireByte('P2', command.p2);
    const plain = command.data === undefined ? Buffer.alloc(0) : requireBytes('data', command.data);
    let body = plain;
    if (plain.length > 0 && (this.#securityLevel & 0x02) !== 0) {
      // SPEC UNCERTAINTY: the spec (and the recorded vector, which covers only counter 1) says
      // the counter advances for each command *that carries data*. Some GlobalPlatform
      // Amendment D revisions advance it for every command after EXTERNAL AUTHENTICATE. In the
      // MOICA flow the only data-less command (84 C1) comes last, so both readings agree there;
      // if a card answers 6982 after a data-less command, this is the place to look.
      if (this.#encryptionCounter >= 0xffffffff) throw invalidInput('Encryption counter exhausted; open a new session');
      this.#encryptionCounter += 1;
      body = scp03EncryptCommandData(this.#sEnc, this.#encryptionCounter, plain);
    }
    return this.#macAndChain({ cla: cla | 0x04, ins, p1, p2 }, body);
  }

  /** Wipes the session keys; the session cannot be used afterwards. */
  destroy(): void {
    this.#sEnc.fill(0);
    this.#sMac.fill(0);
    this.#mcv.fill(0);
    this.#state = 'closed';
  }

  #macAndChain(header: { cla: number; ins: number; p1: number; p2: number }, body: Buffer): Scp03WrappedCommand {
    const lc = body.length + SCP03_MAC_LENGTH;
    // Extended Lc would change the MAC input (3 length bytes); the MOICA card only needs short APDUs.
    if (lc > 0xff) throw invalidInput(`Secured command data too long for a short APDU (${lc} > 255)`);
    const fullMac = scp03CommandMac(this.#sMac, this.#mcv, { ...header, lc }, body);
    this.#mcv.fill(0);
    this.#mcv = fullMac;
    return { ...header, data: Buffer.concat([body, fullMac.subarray(0, SCP03_MAC_LENGTH)]) };
  }

  #requireNotClosed(): void {
    if (this.#state === 'closed') throw invalidInput('Secure channel session is closed');
  }

  #requireState(state: SessionState, operation: string): void {
    this.#requireNotClosed();
    if (this.#state !== state) {
      throw invalidInput(`Secure channel: ${operation} is not allowed in state '${this.#state}'`);
    }
  }
}
