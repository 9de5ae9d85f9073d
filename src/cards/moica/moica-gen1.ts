import { CardBridgeError } from '../../errors.js';
import type { ResponseApdu } from '../../pcsc/apdu.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { expectSuccess, statusWordError } from '../../pcsc/status-words.js';
import { MOICA_GEN1_PIN_KEY, moicaProtectedPinBlock } from '../../crypto/moica-pin-block.js';
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
import {
  MOICA_MODULUS_LENGTH,
  MoicaCardBase,
  type MoicaDriverOptions,
  type MoicaPublicKeyEntry,
  pinStatusError,
  reverseWords,
  stripLeadingZeros,
} from './moica-card.js';

const KEY_RECORD_LENGTH = 128;

/**
 * Generation 1 (HiCOS, CLA 0x80; specs/moica-card.md §2): paths walked FID by FID from the MF,
 * protected VERIFY with the batch's 3DES key, `80 EA` / `80 C1` private-key operations.
 */
export class MoicaGen1Card extends MoicaCardBase {
  readonly generation = 1 as const;

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

  /**
   * In the key EF the PuKDF names, records ref+2 and ref+3 (ref: the PuKDF's key reference)
   * hold the modulus with its 32-bit words reversed. Byte 0 of a record is not checked: the
   * verified module does not check it either.
   */
  async readPublicModulus(key: MoicaPublicKeyEntry): Promise<Buffer> {
    await this.selectPath(this.pathFids(key.path));
    const halves: Buffer[] = [];
    for (const record of [key.keyReference + 2, key.keyReference + 3]) {
      if (record > 0xff) throw new CardBridgeError('ProtocolError', `PuKDF key reference ${key.keyReference} is out of range`);
      const data = expectSuccess(await this.transport.transmit(gen1ReadKeyRecord(record)), 'READ RECORD (public key)');
      if (data.length !== KEY_RECORD_LENGTH + 1) {
        throw new CardBridgeError('ProtocolError', `Key record ${record} holds ${data.length} bytes, not ${KEY_RECORD_LENGTH + 1}`);
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
   * `8C 20 00 01 20 ‖ IV ‖ C`, sent once. `90 00` verified, `63 Cx` wrong PIN, `69 83` blocked,
   * anything else an error (spec corrections). In particular no second VERIFY under the other
   * batch's key after `6A 88`: that rule comes only from static analysis, every VERIFY sent
   * may cost a try, and gen 1 offers no way to read the retry counter that would prove the
   * first one cost nothing (a data-less VERIFY is a plain VERIFY, which the card charges).
   */
  private async protectedVerify(pin: string): Promise<void> {
    const iv = this.random(DES_BLOCK_SIZE);
    const block = moicaProtectedPinBlock(pin, iv, MOICA_GEN1_PIN_KEY);
    block.pinbuf.fill(0);
    const response = await this.transport.transmit(gen1ProtectedVerify(iv, block.cryptogram));
    if (response.sw === 0x9000) return;
    if (response.sw === 0x6a88) {
      throw new CardBridgeError(
        'UnsupportedCard',
        'The card answered 6A 88 to the protected VERIFY: it may use another PIN protection key. The PIN was not sent again.',
        {
          sw: 0x6a88,
          stage: 'pin-protection-key',
          hint:
            'This card did not accept the PIN protection cardbridge uses (this attempt may have cost a PIN try). ' +
            'cardbridge does not try again with another key, so no further try is spent; please report the card version (cardbridge read moica).',
        },
      );
    }
    throw pinStatusError(response.sw);
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
