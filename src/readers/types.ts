import type { CardTransport } from '../pcsc/transport.js';

import type { CardKind, CardType } from '../cards/profile.js';

export type { CardKind, CardType };

export interface CardState {
  atr: string; // hex, upper case
  type: CardType;
  /** The card's name for people, from its profile (cards/index.ts), e.g. "citizen certificate card (自然人憑證), generation 2". */
  label: string;
}

export interface ReaderState {
  name: string;
  /** Absent while no card is in the reader. */
  card?: CardState;
}

export type RegistryEvent =
  | { type: 'reader-added'; reader: string }
  | { type: 'reader-removed'; reader: string }
  | { type: 'card-inserted'; reader: string; card: CardState }
  | { type: 'card-removed'; reader: string }
  | { type: 'service-lost'; message: string }
  | { type: 'service-restored' };

/** An open conversation with the card in one reader, valid inside `withCard` only. */
export interface CardSession extends CardTransport {
  readonly reader: string;
  readonly atr: Buffer;
  readonly cardType: CardType;
  readonly exclusive: boolean;
  /**
   * `read()`'s value, remembered for as long as this card stays inserted (same insertion): for
   * what cannot change meanwhile (certificates, card ids, holder data). Never kept, nor
   * returned, if the card left while it was read. Callers must not mutate the value.
   */
  remember<V>(key: string, read: () => Promise<V>): Promise<V>;
}

/**
 * Which card should serve a request. Every field narrows the choice; an empty selector means
 * "the first reader holding a card". New ways to choose (a card id, a reader id) are new
 * optional fields here, decided in `RegistryBase.locate` only.
 */
export interface CardSelector {
  /** A reader by exact name; otherwise the first reader holding a matching card. */
  reader?: string;
  /** Only cards of this kind qualify. */
  kind?: CardKind;
}

/** A selector plus how the card is used. */
export interface CardRequest extends CardSelector {
  /**
   * EXCLUSIVE access for PIN operations: no other program can talk to the card meanwhile and
   * the card is reset afterwards so nobody can ride on the verified PIN.
   */
  exclusive?: boolean;
}

/** The card `locate` chose: where it is and what it is. */
export interface CardLocation {
  reader: string;
  card: CardState;
}

export interface ReaderRegistry {
  /** Resolves once the initial readers and cards are known (or the service is known down). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether the smart-card service (pcscd) is reachable; always true for the mock. */
  readonly serviceAvailable: boolean;
  readers(): ReaderState[];
  /**
   * The one place that decides which card serves a request, and the only source of
   * `NoService`, `NoReader`, `NoCard` and `WrongCard`. Waits for cards still being recognised.
   */
  locate(selector: CardSelector): Promise<CardLocation>;
  /** The readers `selector.reader` names (all without it): `NoService` or `NoReader` when there are none. */
  locateReaders(selector: Pick<CardSelector, 'reader'>): ReaderState[];
  withCard<T>(selector: CardRequest, operation: (session: CardSession) => Promise<T>): Promise<T>;
  on(event: 'event', listener: (event: RegistryEvent) => void): this;
  off(event: 'event', listener: (event: RegistryEvent) => void): this;
}
