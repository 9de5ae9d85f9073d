import type { CommandApdu } from '../../pcsc/apdu.js';
import { DES_BLOCK_SIZE, pkcs7Pad, pkcs7Unpad, tdesCbcDecrypt, tdesCbcMac } from '../../crypto/des.js';
import { MOICA_GEN1_PIN_KEY, MOICA_GEN1_PIN_KEY_ALT, MOICA_PIN_BUFFER_LENGTH } from '../../crypto/moica-pin-block.js';
import { constantTimeEqual } from '../../crypto/bytes.js';
import { MOICA_FID } from '../../cards/moica/commands.js';
import type { MoicaTestPki } from './test-pki.js';
import {
  type CardKey,
  MAX_FIRST_RESULT_LENGTH,
  SW,
  type VirtualDf,
  type VirtualFile,
  VirtualMoicaCard,
  type VirtualMoicaOptions,
  findChild,
  reply,
} from './virtual-moica-base.js';

export interface VirtualMoicaGen1Options extends VirtualMoicaOptions {
  /** Which protected-VERIFY key batch the card belongs to (spec §2; default 'primary'). */
  pinKeyBatch?: 'primary' | 'alt';
  /** Longest READ BINARY answered; longer reads get `69 87` (default 0xC8). */
  maxReadLength?: number;
  /** How many result bytes `80 EA 02` returns before `80 C1` is needed (at most and default 0x80). */
  firstResultLength?: number;
  /** Byte 0 of a key record (default: the record number; the spec's module never checks it). */
  recordFirstByte?: number;
}

/** ATR seen on a real generation-1 card (historical bytes `CHTMOICA`). */
export const MOICA_GEN1_ATR = Buffer.from('3BB813008131FA524348544D4F494341A5', 'hex');

/**
 * A generation-1 MOICA card (HiCOS, CLA 0x80) in software: file system, protected VERIFY with
 * the batch's 3DES key, and `80 EA` / `80 C1` raw RSA private operations.
 */
export class VirtualMoicaGen1Card extends VirtualMoicaCard {
  readonly atr = MOICA_GEN1_ATR;
  readonly #pinKey: Buffer;
  readonly #maxReadLength: number;
  readonly #firstResultLength: number;
  readonly #recordFirstByte: number | undefined;
  #currentDf: VirtualDf;
  #currentEf: VirtualFile | undefined;

  constructor(pki: MoicaTestPki, options: VirtualMoicaGen1Options = {}) {
    // Private keys 01/05 as observed; the public keys where the PuKDF says, which is neither
    // the PrKDF's reference nor always EF 0810 (spec corrections: "0811 as well as 0810").
    super(1, pki, options, {
      keyRefs: { sign: 0x01, keyx: 0x05 },
      publicKeys: { sign: { fid: MOICA_FID.KEYS_ALT, ref: 0x01 }, keyx: { fid: MOICA_FID.KEYS, ref: 0x09 } },
    });
    this.#pinKey = Buffer.from(options.pinKeyBatch === 'alt' ? MOICA_GEN1_PIN_KEY_ALT : MOICA_GEN1_PIN_KEY, 'latin1');
    this.#maxReadLength = options.maxReadLength ?? 0xc8;
    this.#firstResultLength = Math.min(options.firstResultLength ?? MAX_FIRST_RESULT_LENGTH, MAX_FIRST_RESULT_LENGTH);
    this.#recordFirstByte = options.recordFirstByte;
    this.#currentDf = this.root;
  }

  protected get pathRoot(): number {
    return MOICA_FID.MF;
  }

  /**
   * Record `ref` (the PuKDF's reference): the public exponent; `ref+2`, `ref+3`: the modulus
   * with its 32-bit words in reverse order, split in two 128-byte halves (spec §2 "Public
   * keys"). The exponent is stored the same way (the spec does not say; readers should not rely
   * on it).
   */
  protected keyEfContent(keys: CardKey[]): Buffer {
    // Records are kept as one buffer of 128-byte slots indexed by record number - 1.
    const highest = Math.max(0, ...keys.map((k) => k.publicKey.ref + 3));
    const content = Buffer.alloc(highest * 128);
    const reverseWords = (bytes: Buffer) => {
      const out = Buffer.alloc(bytes.length);
      for (let i = 0; i < bytes.length; i += 4) bytes.copy(out, bytes.length - 4 - i, i, i + 4);
      return out;
    };
    for (const key of keys) {
      const ref = key.publicKey.ref;
      const exponent = Buffer.alloc(128);
      exponent.writeUInt32BE(65537, 124);
      reverseWords(exponent).copy(content, (ref - 1) * 128);
      const modulus = reverseWords(key.modulus);
      modulus.copy(content, (ref + 1) * 128, 0, 128);
      modulus.copy(content, (ref + 2) * 128, 128, 256);
    }
    return content;
  }

  protected onReset(): void {
    this.#currentDf = this.root;
    this.#currentEf = undefined;
  }

  protected handle(command: CommandApdu): Buffer {
    if (command.cla === 0x8c && command.ins === 0x20) return this.protectedVerify(command);
    if (command.cla !== 0x80) return reply(SW.CLA);
    switch (command.ins) {
      case 0xa4:
        return this.select(command);
      case 0xb0:
        return this.readBinary(this.#currentEf, command, this.#maxReadLength);
      case 0xb2:
        return this.readRecord(command);
      case 0xea: {
        if (this.#currentEf?.fid !== MOICA_FID.KEYS) return reply(SW.NO_EF);
        const { sw, result } = this.privateOperationPart(command);
        return reply(sw, result?.subarray(0, this.#firstResultLength));
      }
      case 0xc1:
        return this.resultBytes(command);
      default:
        return reply(SW.INS);
    }
  }

  private select(command: CommandApdu): Buffer {
    if (command.p1 !== 0x00 || command.p2 !== 0x00 || command.data?.length !== 2) return reply(SW.WRONG_P1P2);
    const fid = Buffer.from(command.data).readUInt16BE(0);
    if (fid === MOICA_FID.MF) {
      this.#currentDf = this.root;
      this.#currentEf = undefined;
      return reply(SW.OK);
    }
    const found = findChild(this.#currentDf, fid);
    if (!found) return reply(SW.NOT_FOUND);
    if (found.kind === 'DF') {
      this.#currentDf = found;
      this.#currentEf = undefined;
    } else {
      this.#currentEf = found;
    }
    return reply(SW.OK);
  }

  private readRecord(command: CommandApdu): Buffer {
    const isKeyEf = this.#currentEf?.fid === MOICA_FID.KEYS || this.#currentEf?.fid === MOICA_FID.KEYS_ALT;
    if (!isKeyEf || this.#currentEf?.kind !== 'EF') return reply(SW.NO_EF);
    const record = command.p1;
    const content = this.#currentEf.content;
    // A record slot that holds no key (all zero) does not exist.
    const slot = content.subarray((record - 1) * 128, record * 128);
    if (record === 0 || record * 128 > content.length || slot.every((b) => b === 0)) return reply(SW.RECORD_NOT_FOUND);
    const data = Buffer.concat([Buffer.from([this.#recordFirstByte ?? record]), slot]);
    return reply(SW.OK, data.subarray(0, command.le ?? data.length));
  }

  /** `8C 20 00 01 20 ‖ IV ‖ C`: decrypt with the batch key, check the MAC, then the PIN. */
  private protectedVerify(command: CommandApdu): Buffer {
    if (command.p1 !== 0x00 || command.p2 !== 0x01) return reply(SW.WRONG_P1P2);
    if (this.#currentEf?.fid !== MOICA_FID.KEYS) return reply(SW.NO_EF);
    const data = command.data;
    if (!data || data.length !== DES_BLOCK_SIZE + 24) return reply(SW.WRONG_LENGTH);
    const iv = data.subarray(0, DES_BLOCK_SIZE);
    let plain: Buffer;
    try {
      plain = pkcs7Unpad(tdesCbcDecrypt(this.#pinKey, iv, data.subarray(DES_BLOCK_SIZE)));
    } catch {
      return this.refuseVerify(SW.REF_NOT_FOUND);
    }
    if (plain.length !== MOICA_PIN_BUFFER_LENGTH + DES_BLOCK_SIZE) return this.refuseVerify(SW.REF_NOT_FOUND);
    const pinBuffer = plain.subarray(0, MOICA_PIN_BUFFER_LENGTH);
    const mac = tdesCbcMac(this.#pinKey, pkcs7Pad(pinBuffer), iv);
    // A cryptogram made with another batch's key does not decrypt to a valid MAC: 6A 88. Whether
    // a real card spends a try on it is unknown (spec corrections), so this one does.
    if (!constantTimeEqual(mac, plain.subarray(MOICA_PIN_BUFFER_LENGTH))) return this.refuseVerify(SW.REF_NOT_FOUND);
    return this.checkPin(Buffer.from(pinBuffer));
  }
}
