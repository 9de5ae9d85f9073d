import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import type { CardTransport } from '../../../src/pcsc/transport.js';
import { moicaProfile } from '../../../src/cards/moica/profile.js';
import type { MoicaCard, MoicaDriverOptions } from '../../../src/cards/moica/moica-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card, type VirtualMoicaGen1Options } from '../../../src/emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card, type VirtualMoicaGen2Options } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import type { VirtualMoicaCard } from '../../../src/emulator/moica/virtual-moica-base.js';

export const READER = 'Test Reader';
export const PIN = '123456';

export type Generation = 1 | 2;

export function virtualCard(generation: Generation, pki: MoicaTestPki, options: VirtualMoicaGen1Options & VirtualMoicaGen2Options = {}): VirtualMoicaCard {
  return generation === 1 ? new VirtualMoicaGen1Card(pki, options) : new VirtualMoicaGen2Card(pki, options);
}

type CardOf<G extends Generation> = G extends 1 ? VirtualMoicaGen1Card : G extends 2 ? VirtualMoicaGen2Card : VirtualMoicaCard;

export async function setup<G extends Generation>(generation: G, options: VirtualMoicaGen1Options & VirtualMoicaGen2Options = {}) {
  const pki = await getTestPki();
  const card = virtualCard(generation, pki, options) as CardOf<G>;
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5], removalGraceMs: 50 });
  registry.addReader(READER);
  await registry.insertCard(READER, card);
  return { pki, card, registry };
}

/** Lets a test act on each APDU before the card sees it (e.g. pull the card out). */
export function instrumented(card: VirtualCard, before: (command: Buffer) => void): VirtualCard {
  return {
    atr: card.atr,
    reset: () => card.reset?.(),
    process: (command) => {
      before(command);
      return card.process(command);
    },
  };
}

/** Commands that are a plain (unprotected) VERIFY: CLA 00 or 80, INS 20. */
export function plainVerifies(received: Buffer[]): Buffer[] {
  return received.filter((c) => c[1] === 0x20 && (c[0] === 0x00 || c[0] === 0x80));
}

/**
 * A driver on a bare transport, as the registry makes one at insertion: the profile's probe
 * (gen 2 applet SELECT, then the gen 1 MF), then its `open`. The probe's APDUs are sent.
 */
export async function openMoicaCard(transport: CardTransport, options: MoicaDriverOptions = {}): Promise<MoicaCard> {
  return moicaProfile.open(transport, (await moicaProfile.recognise(transport)) ?? { kind: 'unknown' }, options);
}
