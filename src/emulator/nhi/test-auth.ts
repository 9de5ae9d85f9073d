import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * TEST-ONLY card ↔ SAM authentication shared by the virtual NHI card and the emulated SAM.
 *
 * The real card's algorithm is not public and the bridge never needs it: the bridge only
 * relays 32 bytes from the SAM to the card and 16 bytes back. This stand-in is deliberately
 * simple and uses no real key material:
 *
 *   cardKey   = HMAC-SHA256(masterSecret, "cardbridge-nhi-card-key" ‖ cardId)
 *   samData   = samRandom(16) ‖ HMAC-SHA256(cardKey, "SAM"  ‖ cardChallenge(8) ‖ samRandom)[0..16)
 *   cardReply = HMAC-SHA256(cardKey, "CARD" ‖ samRandom ‖ cardChallenge)[0..16)
 *
 * The card checks the SAM's half (proof that the SAM knows its key and saw this challenge),
 * the SAM checks the card's reply. Both halves are bound to the card's one-time challenge.
 */
export const NHI_TEST_MASTER_SECRET = Buffer.from('cardbridge NHI TEST master secret - not a real key', 'ascii');

export const SAM_RANDOM_LENGTH = 16;
const HALF = 16;

export function nhiTestCardKey(cardId: Uint8Array, masterSecret: Uint8Array = NHI_TEST_MASTER_SECRET): Buffer {
  return createHmac('sha256', masterSecret).update('cardbridge-nhi-card-key').update(cardId).digest();
}

function mac(key: Uint8Array, label: string, a: Uint8Array, b: Uint8Array): Buffer {
  return createHmac('sha256', key).update(label).update(a).update(b).digest().subarray(0, HALF);
}

/** The 32 bytes the SAM sends for the card's mutual authentication. */
export function nhiTestSamAuthData(cardKey: Uint8Array, cardChallenge: Uint8Array, samRandom: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(samRandom), mac(cardKey, 'SAM', cardChallenge, samRandom)]);
}

/** The card's side: checks the SAM's 32 bytes; returns the 16-byte reply, or undefined if they are wrong. */
export function nhiTestCardReply(cardKey: Uint8Array, cardChallenge: Uint8Array, samData: Uint8Array): Buffer | undefined {
  if (samData.length !== SAM_RANDOM_LENGTH + HALF) return undefined;
  const samRandom = samData.subarray(0, SAM_RANDOM_LENGTH);
  const expected = mac(cardKey, 'SAM', cardChallenge, samRandom);
  if (!timingSafeEqual(expected, samData.subarray(SAM_RANDOM_LENGTH))) return undefined;
  return mac(cardKey, 'CARD', samRandom, cardChallenge);
}

/** The SAM's side: is this the reply the card should have given? */
export function nhiTestVerifyCardReply(cardKey: Uint8Array, cardChallenge: Uint8Array, samRandom: Uint8Array, reply: Uint8Array): boolean {
  const expected = mac(cardKey, 'CARD', samRandom, cardChallenge);
  return reply.length === expected.length && timingSafeEqual(expected, reply);
}
