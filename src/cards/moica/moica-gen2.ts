import { CardBridgeError } from '../../errors.js';
import type { ResponseApdu } from '../../pcsc/apdu.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { expectSuccess, statusWordError } from '../../pcsc/status-words.js';
import { MOICA_CARD_ID_LENGTH, MOICA_ISD_CM_AID, type DiversifiedStaticKeys, diversifyMoicaStaticKeys } from '../../crypto/gp-diversify.js';
import { moicaPinBuffer } from '../../crypto/moica-pin-block.js';
import {
  MOICA_FID,
  MOICA_GEN2_GET_CARD_ID,
  MOICA_GEN2_GET_KEY_INFO,
  MOICA_GEN2_SELECT_APPLET,
  MOICA_ISD_AID,
  gen2ReadBinary,
  gen2ReadModulusHalf,
  gen2SecureSelectFid,
  gen2SelectFid,
  gen2VerifyUnderChannel,
  privateOperationPart,
  privateOperationResult,
  selectByAid,
} from './commands.js';
import {
  MOICA_MODULUS_LENGTH,
  MoicaCardBase,
  type MoicaDriverOptions,
  type MoicaPublicKeyEntry,
  pinStatusError,
  stripLeadingZeros,
} from './moica-card.js';
import { Scp03Transport } from './scp03-transport.js';

const STATIC_KEY_LENGTH = 16;

/**
 * Generation 2 (GlobalPlatform applet with SCP03; specs/moica-card.md §3). Files are read in
 * the clear; VERIFY and private-key operations go through a fresh `Scp03Transport` each time,
 * so this class only ever builds plain APDUs.
 */
export class MoicaGen2Card extends MoicaCardBase {
  readonly generation = 2 as const;
  #staticKeys: DiversifiedStaticKeys | undefined;

  constructor(transport: CardTransport, options: MoicaDriverOptions = {}) {
    super(transport, options);
  }

  protected get pathRoot(): number {
    return MOICA_FID.APPLET;
  }

  private async selectApplet(): Promise<void> {
    expectSuccess(await this.transport.transmit(MOICA_GEN2_SELECT_APPLET), 'SELECT MOICA applet');
  }

  /**
   * Plain: the applet, then `00 A4 00 04 02 <FID> 00` (with Le). Through the secure channel:
   * `04 A4 00 04` without Le, as the spec's corrections say.
   */
  protected async selectPath(fids: number[], transport: CardTransport = this.transport): Promise<void> {
    const secured = transport !== this.transport;
    if (!secured) await this.selectApplet();
    for (const fid of fids) {
      const response = await transport.transmit(secured ? gen2SecureSelectFid(fid) : gen2SelectFid(fid));
      if (response.sw !== 0x9000 && (response.sw & 0xff00) !== 0x6200) {
        throw statusWordError(response.sw, `SELECT ${fid.toString(16).padStart(4, '0').toUpperCase()}`);
      }
    }
  }

  protected readBinaryCommand(offset: number, length: number): Promise<ResponseApdu> {
    return this.transport.transmit(gen2ReadBinary(offset, length));
  }

  /** `80 B2 <ref> 03|04` in the key EF the PuKDF names, ref from the PuKDF: the plain halves. */
  async readPublicModulus(key: MoicaPublicKeyEntry): Promise<Buffer> {
    await this.selectPath(this.pathFids(key.path));
    const halves: Buffer[] = [];
    for (const half of [1, 2] as const) {
      const data = expectSuccess(await this.transport.transmit(gen2ReadModulusHalf(key.keyReference, half)), 'Read public key');
      if (data.length !== MOICA_MODULUS_LENGTH / 2) throw new CardBridgeError('ProtocolError', `Public key half of ${data.length} bytes`);
      halves.push(data);
    }
    return stripLeadingZeros(Buffer.concat(halves));
  }

  /** The applet's static SCP03 keys, diversified from the ISD's card id ("Diverse", spec §3). */
  private async staticKeys(): Promise<DiversifiedStaticKeys> {
    if (this.#staticKeys) return this.#staticKeys;
    expectSuccess(await this.transport.transmit(selectByAid(MOICA_ISD_CM_AID)), 'SELECT ISD-CM');
    const keyInfo = expectSuccess(await this.transport.transmit(MOICA_GEN2_GET_KEY_INFO), 'GET DATA E0');
    if (keyInfo[0] !== 0xe0 || keyInfo[7] !== STATIC_KEY_LENGTH) {
      throw new CardBridgeError('UnsupportedCard', 'The card does not use 16-byte secure-channel keys', { stage: 'key-info' });
    }
    expectSuccess(await this.transport.transmit(selectByAid(MOICA_ISD_AID)), 'SELECT ISD');
    // `45 0A <10-byte card id>`, possibly followed by more bytes (spec corrections: "at least 12").
    const cardId = expectSuccess(await this.transport.transmit(MOICA_GEN2_GET_CARD_ID), 'GET DATA 45');
    if (cardId.length < 2 + MOICA_CARD_ID_LENGTH || cardId[0] !== 0x45 || cardId[1]! < MOICA_CARD_ID_LENGTH) {
      throw new CardBridgeError('ProtocolError', 'GET DATA 45 did not return a 10-byte card id', { stage: 'card-id' });
    }
    this.#staticKeys = diversifyMoicaStaticKeys(cardId.subarray(2, 2 + MOICA_CARD_ID_LENGTH));
    return this.#staticKeys;
  }

  /** Selects the applet, opens a fresh secure channel and VERIFYs inside it. */
  private async verifiedChannel(pin: string): Promise<Scp03Transport> {
    const keys = await this.staticKeys();
    await this.selectApplet();
    const channel = new Scp03Transport(this.transport, keys, { random: this.random });
    await channel.open();
    const pinBuffer = moicaPinBuffer(pin);
    try {
      const response = await channel.transmit(gen2VerifyUnderChannel(pinBuffer));
      if (response.sw !== 0x9000) throw pinStatusError(response.sw);
    } catch (e) {
      channel.close();
      throw e;
    } finally {
      pinBuffer.fill(0);
    }
    return channel;
  }

  protected async verifyPinChecked(pin: string): Promise<void> {
    (await this.verifiedChannel(pin)).close();
  }

  protected async privateOperationChecked(keyReference: number, block: Buffer, pin: string): Promise<Buffer> {
    const channel = await this.verifiedChannel(pin);
    try {
      await this.selectPath([MOICA_FID.PKCS15_DF, MOICA_FID.KEYS], channel);
      const half = MOICA_MODULUS_LENGTH / 2;
      expectSuccess(await channel.transmit(privateOperationPart('first', keyReference, block.subarray(0, half))), 'Private-key operation');
      const first = expectSuccess(
        await channel.transmit(privateOperationPart('last', keyReference, block.subarray(half), 0x80)),
        'Private-key operation',
      );
      return await this.collectResult(first, (offset, length) => channel.transmit(privateOperationResult(offset, length)));
    } finally {
      channel.close();
    }
  }
}
