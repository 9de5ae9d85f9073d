import { randomInt } from 'node:crypto';
import { CardBridgeError, isCardBridgeError } from '../../errors.js';
import type { NhiBasicData } from '../../cards/nhi/basic-data.js';
import { nhiProfile } from '../../cards/nhi/profile.js';
import type { CardSelector, ReaderRegistry } from '../../readers/types.js';
import { type SamClientOptions, SamSession } from '../../remote/nhi-sam/sam-client.js';

/** The basic data plus the card status flag the official agent reports with it. */
export interface NhiBasicInfo extends NhiBasicData {
  /**
   * First character of the card status data ("card_termination" in the official agent), or
   * null when the card does not answer the status read.
   */
  cardTermination: string | null;
  /** The reader the card was read in. */
  reader: string;
}

export interface NhiServiceOptions {
  /** Where NHI's cloud SAM is, and how patient to be with it. */
  sam?: SamClientOptions;
  /** Opens SAM sessions; tests may substitute their own. */
  openSam?: (options: SamClientOptions) => Promise<SamSession>;
}

export interface NhiReadOptions {
  /** A reader by exact name; otherwise the first reader holding an NHI card. */
  reader?: string;
}

/** The 20 characters the legacy H_Sign signs: version `0001` then 16 decimal digits. */
export const NHI_SIGN_INPUT_PATTERN = /^0001\d{16}$/;
export const NHI_AGENT_VERSION = '0001';

/**
 * NHI card use cases: read the basic data, make the agent's random, and obtain the legacy web
 * login value (H_Sign) by relaying the card's authentication to NHI's cloud SAM.
 */
export class NhiService {
  private readonly samOptions: SamClientOptions;
  private readonly openSam: (options: SamClientOptions) => Promise<SamSession>;

  constructor(
    private readonly registry: ReaderRegistry,
    options: NhiServiceOptions = {},
  ) {
    this.samOptions = options.sam ?? {};
    this.openSam = options.openSam ?? ((o) => SamSession.open(o));
  }

  /** Read once per insertion: later reads of the same card are answered from memory. */
  async readBasic(options: NhiReadOptions = {}): Promise<NhiBasicInfo> {
    return this.registry.withCard(nhiCard(options), async (session) => {
      const held = await session.remember('nhi.basic', async () => {
        const card = nhiProfile.open(session, session.cardType);
        const basic = await card.readBasic();
        let cardTermination: string | null = null;
        try {
          cardTermination = await card.readTerminationFlag();
        } catch (e) {
          // Only a refusal is tolerated; a broken link or a removed card still fails the read.
          if (!isCardBridgeError(e, 'CardError')) throw e;
        }
        return Object.freeze({ ...basic, cardTermination });
      });
      return { ...held, reader: session.reader };
    });
  }

  /**
   * The card's 12-byte id (`00 CA 00 00 02 00 00`), read once per insertion. The legacy agent's
   * password "encryption" (EnCrypt) keys on it; nothing else in the bridge needs it.
   */
  async readCardId(options: NhiReadOptions = {}): Promise<{ cardId: Buffer; reader: string }> {
    return this.registry.withCard(nhiCard(options), async (session) => {
      const cardId = await session.remember('nhi.card-id', () => nhiProfile.open(session, session.cardType).readCardId());
      return { cardId: Buffer.from(cardId), reader: session.reader };
    });
  }

  /**
   * The agent's random for H_Sign: 16 decimal digits from the system's CSPRNG (each digit
   * uniform; leading zeros kept).
   */
  getRandom(): string {
    let digits = '';
    for (let i = 0; i < 16; i++) digits += String(randomInt(10));
    return digits;
  }

  /**
   * H_Sign: the 256-byte value NHI's SAM makes over `random20` (`0001` + 16 digits) once it has
   * authenticated the card. Order as the official agent: SAM connection and handshake first,
   * then the card (card id, challenge), the SAM's authentication data to the card, and the
   * card's answer with the string to sign back to the SAM.
   */
  async hSign(random20: string, options: NhiReadOptions = {}): Promise<Buffer> {
    if (typeof random20 !== 'string' || !NHI_SIGN_INPUT_PATTERN.test(random20)) {
      throw new CardBridgeError('InvalidInput', 'The string to sign must be "0001" followed by 16 digits', {
        hint: 'Call GetRandom and send "0001" + the random.',
      });
    }
    const sam = await this.openSam(this.samOptions);
    try {
      return await this.registry.withCard(nhiCard(options), async (session) => {
        const card = nhiProfile.open(session, session.cardType);
        const cardId = await card.readCardId();
        const challenge = await card.getChallenge();
        const samData = await sam.authenticateCard(cardId, challenge);
        const cardReply = await card.mutualAuthenticate(samData);
        return sam.sign(cardReply, random20);
      });
    } finally {
      sam.close();
    }
  }
}

function nhiCard(options: NhiReadOptions): CardSelector {
  return options.reader === undefined ? { kind: 'nhi' } : { kind: 'nhi', reader: options.reader };
}
