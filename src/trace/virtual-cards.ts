import { getTestPki } from '../emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card } from '../emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../emulator/moica/virtual-moica-gen2.js';
import { EmulatedSam } from '../emulator/nhi/emulated-sam.js';
import { VirtualNhiCard } from '../emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../emulator/virtual-card.js';
import { MockReaderRegistry } from '../readers/mock-registry.js';

/**
 * `cardbridge trace --virtual`: the project's virtual cards (and emulated SAM) in a mock reader,
 * so the fixture traces can be recorded again by one command whenever the drivers or the
 * virtual cards change. Never used without --virtual.
 */

export const VIRTUAL_TRACE_CARDS = ['nhi', 'moica-gen1', 'moica-gen2'] as const;
export type VirtualTraceCard = (typeof VIRTUAL_TRACE_CARDS)[number];
export const VIRTUAL_TRACE_READER = 'Virtual Reader';
/**
 * The virtual MOICA cards' PIN for recordings: not the demo's 123456, which the virtual card's
 * serial number (…12345678) contains, so that a search of the fixtures for the PIN means
 * something.
 */
export const VIRTUAL_TRACE_PIN = '86420975';

export interface VirtualTraceRig {
  registry: MockReaderRegistry;
  /** Set for NHI cards: the emulated SAM the H_Sign relay talks to. */
  sam?: EmulatedSam;
  close(): Promise<void>;
}

async function createCard(kind: VirtualTraceCard): Promise<VirtualCard> {
  switch (kind) {
    case 'nhi':
      return new VirtualNhiCard();
    case 'moica-gen1':
      return new VirtualMoicaGen1Card(await getTestPki(), { pin: VIRTUAL_TRACE_PIN });
    case 'moica-gen2':
      return new VirtualMoicaGen2Card(await getTestPki(), { pin: VIRTUAL_TRACE_PIN });
  }
}

export async function startVirtualTraceRig(kind: VirtualTraceCard, card?: VirtualCard): Promise<VirtualTraceRig> {
  const registry = new MockReaderRegistry();
  registry.addReader(VIRTUAL_TRACE_READER);
  await registry.insertCard(VIRTUAL_TRACE_READER, card ?? (await createCard(kind)));
  const sam = kind === 'nhi' ? await EmulatedSam.start() : undefined;
  return {
    registry,
    ...(sam ? { sam } : {}),
    async close() {
      await registry.stop();
      await sam?.close();
    },
  };
}
