import { CardBridgeError } from '../../errors.js';
import type { ResponseApdu } from '../../pcsc/apdu.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { expectSuccess, statusWordError } from '../../pcsc/status-words.js';
import { MOICA_GEN1_PIN_KEY, MOICA_GEN1_PIN_KEY_ALT, moicaProtectedPinBlock } from '../../crypto/moica-pin-block.js';
import { DES_BLOCK_SIZE } from '../../crypto/des.js';
import {
  MOICA_FID,
  gen1ProtectedVerify,
  gen1ReadBinary,
  gen1ReadKeyRecord,
  gen1SelectFid,
  privateOperationPart,
  privateOperationResult,
} from './commands.js';
import { MOICA_MODULUS_LENGTH, MoicaCardBase, type MoicaDriverOptions, pinStatusError, reverseWords, stripLeadingZeros } from './moica-card.js';

const KEY_RECORD_LENGTH = 128;

/**
 * Generation 1 (HiCOS, CLA 0x80; specs/moica-card.md §2): paths walked FID by FID from the MF,
 * protected VERIFY with the batch's 3DES key, `80 EA` / `80 C1` private-key operations.
 */
export class MoicaGen1Card extends MoicaCardBase {
  readonly generation = 1 as const;
  /** The protected-VERIFY key this card's batch uses, once known. */
  #pinKey: string = MOICA_GEN1_PIN_KEY;

  constructor(transport: CardTransport, options: MoicaDriverOptions = {}) {
    super(transport, options);
  }

  protected get pathRoot(): number {
    return MOICA_FID.MF;
  }

  protected async selectPath(fids: number[]): Promise<void> {
    for (const fid of [MOICA_FID.MF, ...fids]) {
      const response = await this.transport.transmit(gen1SelectFid(fid));
      if (response.sw !== 0x9000 && (response.sw & 0xff00) !== 0x6200) {
        throw statusWordError(response.sw, `SELECT ${fid.toString(16).padStart(4, '0').toUpperCase()}`);
      }
    }
  }

  protected readBinaryCommand(offset: number, length: number): Promise<ResponseApdu> {
    return this.transport.transmit(gen1ReadBinary(offset, length));
  }

  /** Records keyRef+2 and keyRef+3 hold the modulus with its 32-bit words reversed. */
  async readPublicModulus(keyReference: number): Promise<Buffer> {
    await this.selectPath([MOICA_FID.PKCS15_DF, MOICA_FID.KEYS]);
    const halves: Buffer[] = [];
    for (const record of [keyReference + 2, keyReference + 3]) {
      const data = expectSuccess(await this.transport.transmit(gen1ReadKeyRecord(record)), 'READ RECORD (public key)');
      if (data.length !== KEY_RECORD_LENGTH + 1 || data[0] !== record) {
        throw new CardBridgeError('ProtocolError', `Key record ${record} has an unexpected form`);
      }
      halves.push(data.subarray(1));
    }
    return stripLeadingZeros(reverseWords(Buffer.concat(halves)));
  }

  protected async verifyPinChecked(pin: string): Promise<void> {
    await this.selectPath([MOICA_FID.PKCS15_DF, MOICA_FID.KEYS]);
    await this.protectedVerify(pin);
  }

  /**
   * `8C 20 00 01 20 ‖ IV ‖ C`. A `6A 88` means the cryptogram was made with the other batch's
   * key: the card could not read it and spent no try, so the same PIN goes once more under
   * the other key (spec §2 step 4). Any other answer ends the attempt.
   */
  private async protectedVerify(pin: string): Promise<void> {
    const keys = this.#pinKey === MOICA_GEN1_PIN_KEY ? [MOICA_GEN1_PIN_KEY, MOICA_GEN1_PIN_KEY_ALT] : [this.#pinKey];
    for (const key of keys) {
      const iv = this.random(DES_BLOCK_SIZE);
      const block = moicaProtectedPinBlock(pin, iv, key);
      block.pinbuf.fill(0);
      const response = await this.transport.transmit(gen1ProtectedVerify(iv, block.cryptogram));
      if (response.sw === 0x6a88) continue;
      if (response.sw !== 0x9000) throw pinStatusError(response.sw);
      this.#pinKey = key;
      return;
    }
    throw new CardBridgeError('UnsupportedCard', 'The card accepts neither known PIN protection key', {
      sw: 0x6a88,
      hint: 'This citizen certificate card batch is not supported yet.',
    });
  }

  protected async privateOperationChecked(keyReference: number, block: Buffer, pin: string): Promise<Buffer> {
    await this.selectPath([MOICA_FID.PKCS15_DF, MOICA_FID.KEYS]);
    await this.protectedVerify(pin);
    const half = MOICA_MODULUS_LENGTH / 2;
    expectSuccess(await this.transport.transmit(privateOperationPart('first', keyReference, block.subarray(0, half))), 'Private-key operation');
    const first = expectSuccess(await this.transport.transmit(privateOperationPart('last', keyReference, block.subarray(half))), 'Private-key operation');
    return this.collectResult(first, (offset, length) => this.transport.transmit(privateOperationResult(offset, length)));
  }
}
