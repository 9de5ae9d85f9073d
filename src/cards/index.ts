import type { CardTransport } from '../pcsc/transport.js';
import type { CardKind, CardType } from './profile.js';
import { moicaProfile } from './moica/profile.js';
import { nhiProfile } from './nhi/profile.js';

export type { CardKind, CardProfile, CardType } from './profile.js';
export { moicaProfile, nhiProfile };

/**
 * Every card type the bridge serves, in probing order: NHI first (the most common card), then
 * MOICA. A new card type is one driver folder, one entry here, and its virtual card
 * (docs/architecture.md, "Adding a card type").
 */
export const CARD_PROFILES = [nhiProfile, moicaProfile] as const;

type KnownKind = (typeof CARD_PROFILES)[number]['kind'];

function profileOf(kind: CardKind): (typeof CARD_PROFILES)[number] | undefined {
  return CARD_PROFILES.find((p) => p.kind === kind);
}

/** Tells which card is in a reader by walking the profiles' probes (read-only, nothing changes on the card). */
export async function recognizeCard(transport: CardTransport): Promise<CardType> {
  for (const profile of CARD_PROFILES) {
    const type = await profile.recognise(transport);
    if (type) return type;
  }
  for (const profile of CARD_PROFILES) {
    const type = await profile.recogniseLast?.(transport);
    if (type) return type;
  }
  return { kind: 'unknown' };
}

/** "health insurance card (健保卡)"; "card" for a kind no profile knows. */
export function cardLabel(kind: CardKind): string {
  return profileOf(kind)?.label ?? 'card';
}

/** The kind with an indefinite article, for sentences: "Insert a health insurance card (健保卡)." */
export function describeKind(kind: CardKind): string {
  const profile = profileOf(kind);
  return profile ? `a ${profile.label}` : 'a supported card';
}

/** A recognised card for people to read: label and variant, e.g. "citizen certificate card (自然人憑證), generation 2". */
export function describeCardType(type: CardType): string {
  const profile = profileOf(type.kind);
  if (!profile) return 'unknown card';
  const variant = profile.variant?.(type);
  return variant ? `${profile.label}, ${variant}` : profile.label;
}

export function isKnownKind(kind: string): kind is KnownKind {
  return CARD_PROFILES.some((p) => p.kind === kind);
}
