import type { CardTransport } from '../pcsc/transport.js';

/**
 * What a card type brings to the bridge: its name, how to tell it from other cards by probes
 * that change nothing on the card, and how to open its driver on a session. The list of
 * profiles (cards/index.ts) is the only place that knows which card types exist.
 */

/** The kinds of card the profiles in cards/index.ts recognise; 'unknown' is any other card. */
export type CardKind = 'nhi' | 'moica' | 'unknown';

export interface CardType {
  kind: CardKind;
  /** MOICA only: 1 (HiCOS with CLA 0x80) or 2 (GlobalPlatform applet with SCP03). */
  generation?: 1 | 2;
}

export interface CardProfile<K extends Exclude<CardKind, 'unknown'>, Driver, Options = undefined> {
  readonly kind: K;
  /** What users call the card, in English and Traditional Chinese: "health insurance card (健保卡)". */
  readonly label: string;
  /** The variant of a recognised card for people to read (e.g. "generation 2"), if the kind has variants. */
  variant?(type: CardType): string | undefined;
  /** The card's type when this profile's probe says it is one, otherwise undefined. */
  recognise(transport: CardTransport): Promise<CardType | undefined>;
  /**
   * Probes that other cards could answer too, tried only after every profile's `recognise`
   * said no (e.g. NHI cards that refuse SELECT but answer GET DATA).
   */
  recogniseLast?(transport: CardTransport): Promise<CardType | undefined>;
  /** The driver for a card recognised as `type` at insertion: no probing again. */
  open(transport: CardTransport, type: CardType, options?: Options): Driver;
}
