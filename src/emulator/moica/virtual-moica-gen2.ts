import * as asn1js from 'asn1js';
import type { CommandApdu } from '../../pcsc/apdu.js';
import { AES_BLOCK_SIZE, aesCbcDecrypt } from '../../crypto/aes.js';
import { constantTimeEqual } from '../../crypto/bytes.js';
import { MOICA_CARD_ID_LENGTH, MOICA_ISD_CM_AID, diversifyMoicaStaticKeys } from '../../crypto/gp-diversify.js';
import {
  SCP03_MAC_LENGTH,
  type Scp03SessionKeys,
  deriveScp03SessionKeys,
  scp03CardCryptogram,
  scp03CommandIv,
  scp03CommandMac,
  scp03HostCryptogram,
} from '../../crypto/scp03.js';
import { MOICA_FID, MOICA_GEN2_APPLET_AID, MOICA_ISD_AID } from '../../cards/moica/commands.js';
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

export interface VirtualMoicaGen2Options extends VirtualMoicaOptions {
  /** The 10-byte card id of GET DATA 45; the SCP03 keys are diversified from it. */
  cardId?: Buffer;
  /** Bytes GET DATA 45 returns after `45 0A <card id>` (the spec: "at least 12 bytes"). */
  cardIdTrailer?: Buffer;
}

export const MOICA_GEN2_ATR = Buffer.from('3BDC18FF8191FE1FC38073C8211366020403550000024D', 'hex');

type Application = 'none' | 'isd-cm' | 'isd' | 'applet';

interface Channel {
  keys: Scp03SessionKeys;
  hostChallenge: Buffer;
  cardChallenge: Buffer;
  state: 'initialized' | 'authenticated';
  mcv: Buffer;
  counter: number;
  level: number;
}

/**
 * A generation-2 MOICA card (GlobalPlatform applet with SCP03, spec §3) in software: the
 * ISD-CM / ISD data objects the static keys are diversified from, the card side of SCP03
 * (C-MAC and C-DECRYPTION checked and undone here with the same primitives the host uses),
 * VERIFY and private-key operations only inside an authenticated channel.
 */
export class VirtualMoicaGen2Card extends VirtualMoicaCard {
  readonly atr = MOICA_GEN2_ATR;
  readonly cardId: Buffer;
  readonly #cardIdTrailer: Buffer;
  #application: Application = 'none';
  #currentDf: VirtualDf | undefined;
  #currentEf: VirtualFile | undefined;
  #channel: Channel | undefined;

  constructor(pki: MoicaTestPki, options: VirtualMoicaGen2Options = {}) {
    super(2, pki, options, {
      keyRefs: { sign: 0x11, keyx: 0x01 },
      publicKeys: { sign: { fid: MOICA_FID.KEYS_ALT, ref: 0x11 }, keyx: { fid: MOICA_FID.KEYS, ref: 0x02 } },
    });
    this.#cardIdTrailer = Buffer.from(options.cardIdTrailer ?? []);
    this.cardId = Buffer.from(options.cardId ?? Buffer.from('24056964130001903957', 'hex'));
    if (this.cardId.length !== MOICA_CARD_ID_LENGTH) throw new RangeError('card id must be 10 bytes');
  }

  protected get pathRoot(): number {
    return MOICA_FID.APPLET;
  }

  /** Generation 2 answers `80 B2 <keyRef> 03|04` with plain halves; stored here per key. */
  protected keyEfContent(keys: CardKey[]): Buffer {
    return Buffer.concat(keys.map((k) => k.modulus));
  }

  get secureChannelOpen(): boolean {
    return this.#channel?.state === 'authenticated';
  }

  protected onReset(): void {
    this.#application = 'none';
    this.#currentDf = undefined;
    this.#currentEf = undefined;
    this.#channel = undefined;
  }

  private closeChannel(): void {
    this.#channel = undefined;
    // The verified PIN lives in the channel: a new channel needs a new VERIFY.
    this.verified = false;
  }

  protected handle(command: CommandApdu): Buffer {
    if (command.cla === 0x84 || command.cla === 0x04) return this.secured(command);
    if (command.cla !== 0x00 && command.cla !== 0x80) return reply(SW.CLA);
    if (command.ins === 0x50 && command.cla === 0x80) return this.initializeUpdate(command);
    // Any other plain command ends the secure channel (GlobalPlatform rule).
    if (this.#channel) this.closeChannel();
    return this.dispatch(command, false);
  }

  private dispatch(command: CommandApdu, secured: boolean): Buffer {
    const { cla, ins } = command;
    if (cla === 0x00 && ins === 0xa4 && command.p1 === 0x04) return this.selectAid(command);
    if (this.#application === 'isd-cm' && cla === 0x80 && ins === 0xca && command.p2 === 0xe0) {
      // Three key-information templates: key id, version, type 88 (AES), length 16.
      return reply(SW.OK, Buffer.from('E012C00401018810C00402018810C00403018810', 'hex'));
    }
    if (this.#application === 'isd' && cla === 0x80 && ins === 0xca && command.p2 === 0x45) {
      return reply(SW.OK, Buffer.concat([Buffer.from([0x45, MOICA_CARD_ID_LENGTH]), this.cardId, this.#cardIdTrailer]));
    }
    if (this.#application !== 'applet') return reply(ins === 0xca ? SW.REF_NOT_FOUND : SW.INS);
    if (cla === 0x00 && ins === 0xa4) {
      // Spec corrections: the plain SELECT carries Le, the secure-messaging one (04 A4) none.
      if ((command.le !== undefined) === secured) return reply(SW.WRONG_LENGTH);
      return this.selectFile(command);
    }
    if (cla === 0x00 && ins === 0xb0) return this.readBinary(this.#currentEf, command);
    if (cla === 0x80 && ins === 0xb2) return this.readModulusHalf(command);
    if (cla === 0x00 && ins === 0x20) {
      // Only reached under the channel: process() handles a plain VERIFY before dispatch.
      if (!secured) return reply(SW.SECURITY);
      if (command.p1 !== 0x00 || command.p2 !== 0x01 || !command.data) return reply(SW.WRONG_P1P2);
      return this.checkPin(Buffer.from(command.data));
    }
    if (cla === 0x80 && (ins === 0xea || ins === 0xc1)) {
      if (!secured) return reply(SW.SECURITY);
      if (this.#currentEf?.fid !== MOICA_FID.KEYS) return reply(SW.NO_EF);
      // Spec corrections: `84 EA 82` without Le, `84 EA 02` and `84 C1` with Le 80.
      const wantsLe = ins === 0xc1 || command.p1 === 0x02;
      if (wantsLe ? command.le === undefined || command.le > MAX_FIRST_RESULT_LENGTH : command.le !== undefined) return reply(SW.WRONG_LENGTH);
      if (ins === 0xc1) return this.resultBytes(command);
      const { sw, result } = this.privateOperationPart(command);
      return reply(sw, result?.subarray(0, command.le ?? 0));
    }
    return reply(SW.INS);
  }

  private selectAid(command: CommandApdu): Buffer {
    const aid = Buffer.from(command.data ?? []);
    this.closeChannel();
    this.#currentDf = undefined;
    this.#currentEf = undefined;
    if (aid.equals(MOICA_ISD_CM_AID)) this.#application = 'isd-cm';
    else if (aid.equals(MOICA_ISD_AID)) this.#application = 'isd';
    else if (aid.equals(MOICA_GEN2_APPLET_AID)) {
      this.#application = 'applet';
      this.#currentDf = this.root;
    } else {
      return reply(SW.NOT_FOUND);
    }
    return reply(SW.OK);
  }

  private selectFile(command: CommandApdu): Buffer {
    if (command.p1 !== 0x00 || command.p2 !== 0x04 || command.data?.length !== 2 || !this.#currentDf) return reply(SW.WRONG_P1P2);
    const fid = Buffer.from(command.data).readUInt16BE(0);
    const found = fid === MOICA_FID.APPLET ? this.root : findChild(this.#currentDf, fid);
    if (!found) return reply(SW.NOT_FOUND);
    if (found.kind === 'DF') {
      this.#currentDf = found;
      this.#currentEf = undefined;
    } else {
      this.#currentEf = found;
    }
    // FCP: file size (EFs) and FID, encoded as a [APPLICATION 2] template of context tags.
    const fcpContent: asn1js.AsnType[] = [];
    if (found.kind === 'EF') {
      fcpContent.push(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: u16(found.content.length) }));
    }
    fcpContent.push(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 3 }, valueHex: u16(fid) }));
    const fcp = new asn1js.Constructed({ idBlock: { tagClass: 2, tagNumber: 2 }, value: fcpContent });
    return reply(SW.OK, Buffer.from(fcp.toBER(false)).subarray(0, command.le ?? 0));
  }

  /** `80 B2 <ref> 03|04` in the key EF the PuKDF names, under the PuKDF's reference. */
  private readModulusHalf(command: CommandApdu): Buffer {
    const current = this.#currentEf;
    if (current?.kind !== 'EF' || (current.fid !== MOICA_FID.KEYS && current.fid !== MOICA_FID.KEYS_ALT)) return reply(SW.NO_EF);
    const key = this.publicKeyAt(current.fid, command.p1);
    if (!key) return reply(SW.REF_NOT_FOUND);
    if (command.p2 !== 0x03 && command.p2 !== 0x04) return reply(SW.WRONG_P1P2);
    const half = key.modulus.subarray((command.p2 - 3) * 128, (command.p2 - 2) * 128);
    return reply(SW.OK, half.subarray(0, command.le ?? 0));
  }

  // ——— SCP03, card side ———

  private initializeUpdate(command: CommandApdu): Buffer {
    if (this.#application !== 'applet') return reply(SW.INS);
    if (command.p1 !== 0x00 && command.p1 !== 0x01) return reply(SW.REF_NOT_FOUND);
    const hostChallenge = command.data;
    if (!hostChallenge || hostChallenge.length !== 8) return reply(SW.WRONG_LENGTH);
    this.closeChannel();
    const cardChallenge = this.random(8);
    const keys = deriveScp03SessionKeys(diversifyMoicaStaticKeys(this.cardId), hostChallenge, cardChallenge);
    this.#channel = {
      keys,
      hostChallenge: Buffer.from(hostChallenge),
      cardChallenge,
      state: 'initialized',
      mcv: Buffer.alloc(AES_BLOCK_SIZE),
      counter: 0,
      level: 0,
    };
    const response = Buffer.concat([
      this.cardId, // key diversification data
      Buffer.from([0x01, 0x03, 0x00]), // key version 1, SCP03, i = 00
      cardChallenge,
      scp03CardCryptogram(keys.sMac, hostChallenge, cardChallenge),
    ]);
    return reply(SW.OK, response);
  }

  /** Checks the C-MAC (and chains the MCV); returns the body without the MAC, or undefined. */
  private checkMac(channel: Channel, command: CommandApdu): Buffer | undefined {
    const data = command.data;
    if (!data || data.length < SCP03_MAC_LENGTH) return undefined;
    const body = data.subarray(0, data.length - SCP03_MAC_LENGTH);
    const mac = scp03CommandMac(channel.keys.sMac, channel.mcv, { cla: command.cla, ins: command.ins, p1: command.p1, p2: command.p2, lc: data.length }, body);
    if (!constantTimeEqual(mac.subarray(0, SCP03_MAC_LENGTH), data.subarray(data.length - SCP03_MAC_LENGTH))) return undefined;
    channel.mcv = mac;
    return Buffer.from(body);
  }

  private secured(command: CommandApdu): Buffer {
    const channel = this.#channel;
    if (!channel) return reply(SW.SECURITY);
    const body = this.checkMac(channel, command);
    if (body === undefined) {
      this.closeChannel();
      return reply(SW.SECURITY);
    }
    if (channel.state === 'initialized') {
      if (command.cla !== 0x84 || command.ins !== 0x82) {
        this.closeChannel();
        return reply(SW.CONDITIONS);
      }
      const expected = scp03HostCryptogram(channel.keys.sMac, channel.hostChallenge, channel.cardChallenge);
      if (command.p1 !== 0x01 && command.p1 !== 0x03) {
        this.closeChannel();
        return reply(SW.WRONG_P1P2);
      }
      if (!constantTimeEqual(body, expected)) {
        this.closeChannel();
        return reply(0x6300);
      }
      channel.state = 'authenticated';
      channel.level = command.p1;
      return reply(SW.OK);
    }
    let plain = body;
    if (body.length > 0 && (channel.level & 0x02) !== 0) {
      channel.counter += 1;
      const decrypted = body.length % AES_BLOCK_SIZE === 0 ? aesCbcDecrypt(channel.keys.sEnc, scp03CommandIv(channel.keys.sEnc, channel.counter), body) : undefined;
      const end = decrypted ? decrypted.lastIndexOf(0x80) : -1;
      if (!decrypted || end < 0 || decrypted.subarray(end + 1).some((b) => b !== 0)) {
        this.closeChannel();
        return reply(SW.SM_DATA);
      }
      plain = decrypted.subarray(0, end);
    }
    const inner: CommandApdu = { cla: command.cla & ~0x04, ins: command.ins, p1: command.p1, p2: command.p2 };
    if (plain.length > 0) inner.data = plain;
    if (command.le !== undefined) inner.le = command.le;
    return this.dispatch(inner, true);
  }
}

function u16(value: number): Buffer {
  return Buffer.from([(value >> 8) & 0xff, value & 0xff]);
}
