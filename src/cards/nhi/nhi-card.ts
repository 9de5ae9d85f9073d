import { CardBridgeError, type ErrorStage, asCardBridgeError } from '../../errors.js';
import type { CommandApdu, ResponseApdu } from '../../pcsc/apdu.js';
import { statusWordError } from '../../pcsc/status-words.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { type NhiBasicData, parseNhiBasicData } from './basic-data.js';
import {
  NHI_BASIC_DATA_LENGTH,
  NHI_CARD_AUTH_ANSWER_LENGTH,
  NHI_CARD_ID_LENGTH,
  NHI_CHALLENGE_LENGTH,
  NHI_GET_CHALLENGE,
  NHI_READ_BASIC_DATA,
  NHI_READ_CARD_ID,
  NHI_READ_CARD_STATUS,
  NHI_SAM_AUTH_DATA_LENGTH,
  NHI_SELECT_APPLET,
  nhiMutualAuthenticate,
} from './commands.js';

/**
 * The steps of the NHI driver, carried in `CardBridgeError.stage` so that an edge can tell a
 * failed card-id read from a failed challenge without knowing any APDU.
 */
export type NhiStage = Extract<ErrorStage, 'select' | 'basic-data' | 'card-id' | 'card-status' | 'challenge' | 'mutual-auth'>;

/** Medical-staff cards (醫事人員卡) refuse the citizen basic-data read with this word. */
const SW_STAFF_CARD = 0x6a86;

function withStage(e: unknown, stage: NhiStage): CardBridgeError {
  const error = asCardBridgeError(e);
  if (error.stage !== undefined) return error;
  return new CardBridgeError(error.code, error.message, {
    ...(error.sw !== undefined && { sw: error.sw }),
    ...(error.triesLeft !== undefined && { triesLeft: error.triesLeft }),
    ...(error.reader !== undefined && { reader: error.reader }),
    ...(error.hint !== undefined && { hint: error.hint }),
    stage,
    cause: error,
  });
}

/**
 * Driver for the NHI health insurance card (健保卡): APDU sequences in, domain values out.
 *
 * The applet is selected once, lazily, before the first read; a failed SELECT is not fatal
 * because some newer cards answer `6D 00` to it yet serve GET DATA (specs/nhi-card.md). When
 * the SELECT failed and the read fails too, the card is not an NHI card (`WrongCard`).
 */
export class NhiCard {
  private selection: Promise<boolean> | undefined;

  constructor(private readonly transport: CardTransport) {}

  /** Selects the main applet; resolves false (not an error) when the card refuses it. */
  select(): Promise<boolean> {
    this.selection ??= this.run('select', NHI_SELECT_APPLET).then((r) => r.sw === 0x9000);
    return this.selection;
  }

  /** The citizen's basic data (card number, name, ID, birth date, sex, issue date). */
  async readBasic(): Promise<NhiBasicData> {
    const selected = await this.select();
    const response = await this.run('basic-data', NHI_READ_BASIC_DATA);
    if (response.sw === SW_STAFF_CARD) {
      throw new CardBridgeError('UnsupportedCard', 'This is not a citizen health insurance card (it looks like a medical-staff card)', {
        sw: response.sw,
        stage: 'basic-data',
        hint: "Insert the citizen's own health insurance card (健保卡), not a medical-staff card.",
      });
    }
    if (response.sw !== 0x9000) {
      if (!selected) throw this.notNhi();
      throw withStage(statusWordError(response.sw, 'Reading the basic data'), 'basic-data');
    }
    if (!selected && response.data.length !== NHI_BASIC_DATA_LENGTH) throw this.notNhi();
    return parseNhiBasicData(response.data);
  }

  /** The 12-byte card id that the SAM authenticates (opaque bytes, ASCII digits on real cards). */
  async readCardId(): Promise<Buffer> {
    const selected = await this.select();
    const response = await this.run('card-id', NHI_READ_CARD_ID);
    if (response.sw !== 0x9000) {
      if (!selected) throw this.notNhi();
      throw withStage(statusWordError(response.sw, 'Reading the card id'), 'card-id');
    }
    if (!selected && response.data.length !== NHI_CARD_ID_LENGTH) throw this.notNhi();
    return this.exactLength(response.data, NHI_CARD_ID_LENGTH, 'card id', 'card-id');
  }

  /**
   * The first character of the card status data: the "card_termination" flag the official
   * agent reports next to the basic data.
   */
  async readTerminationFlag(): Promise<string> {
    await this.select();
    const response = await this.run('card-status', NHI_READ_CARD_STATUS);
    if (response.sw !== 0x9000) throw withStage(statusWordError(response.sw, 'Reading the card status'), 'card-status');
    const first = response.data[0];
    if (first === undefined || first < 0x20 || first > 0x7e) {
      throw new CardBridgeError('ProtocolError', 'The card status data does not start with a printable character', { stage: 'card-status' });
    }
    return String.fromCharCode(first);
  }

  /** 8 random bytes from the card, the first half of its authentication to the SAM. */
  async getChallenge(): Promise<Buffer> {
    await this.select();
    const response = await this.run('challenge', NHI_GET_CHALLENGE);
    if (response.sw !== 0x9000) throw withStage(statusWordError(response.sw, 'GET CHALLENGE'), 'challenge');
    return this.exactLength(response.data, NHI_CHALLENGE_LENGTH, 'challenge', 'challenge');
  }

  /** Hands the SAM's 32 bytes to the card and returns the card's 16-byte answer for the SAM. */
  async mutualAuthenticate(samData: Uint8Array): Promise<Buffer> {
    if (samData.length !== NHI_SAM_AUTH_DATA_LENGTH) {
      throw new CardBridgeError('InvalidInput', `Mutual authentication needs ${NHI_SAM_AUTH_DATA_LENGTH} bytes from the SAM, got ${samData.length}`, {
        stage: 'mutual-auth',
      });
    }
    await this.select();
    const response = await this.run('mutual-auth', nhiMutualAuthenticate(samData));
    if (response.sw !== 0x9000) throw withStage(statusWordError(response.sw, 'Mutual authentication'), 'mutual-auth');
    return this.exactLength(response.data, NHI_CARD_AUTH_ANSWER_LENGTH, 'mutual authentication answer', 'mutual-auth');
  }

  private async run(stage: NhiStage, command: CommandApdu): Promise<ResponseApdu> {
    try {
      return await this.transport.transmit(command);
    } catch (e) {
      throw withStage(e, stage);
    }
  }

  private exactLength(data: Buffer, length: number, what: string, stage: NhiStage): Buffer {
    if (data.length !== length) {
      throw new CardBridgeError('ProtocolError', `The card's ${what} is ${data.length} bytes, expected ${length}`, { stage });
    }
    return Buffer.from(data);
  }

  private notNhi(): CardBridgeError {
    return new CardBridgeError('WrongCard', 'The card is not a health insurance card (健保卡)', {
      stage: 'select',
      hint: 'Insert a health insurance card (健保卡).',
    });
  }
}
