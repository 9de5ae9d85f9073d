import { VirtualNhiCard } from '../emulator/nhi/virtual-nhi-card.js';
import { getTestPki } from '../emulator/moica/test-pki.js';
import { VirtualMoicaGen2Card } from '../emulator/moica/virtual-moica-gen2.js';
import type { VirtualCard } from '../emulator/virtual-card.js';
import { MockReaderRegistry } from '../readers/mock-registry.js';

export const DEMO_READERS = ['Mock Reader 0', 'Mock Reader 1'] as const;

/** PIN of the demo's virtual MOICA card. */
export const DEMO_MOICA_PIN = '123456';

/**
 * The card each demo reader gets: a virtual NHI card (fake identity 王小明) in reader 0 and a
 * virtual MOICA generation-2 card (fake holder 測試一, test PKI, PIN 123456) in reader 1.
 * Async because the MOICA card's test PKI is generated on first use (about a second).
 */
export async function createDemoCard(reader: (typeof DEMO_READERS)[number]): Promise<VirtualCard> {
  if (reader === DEMO_READERS[0]) return new VirtualNhiCard();
  return new VirtualMoicaGen2Card(await getTestPki(), { pin: DEMO_MOICA_PIN });
}

/**
 * The demo's readers: virtual cards in in-process mock readers, so the demo and relying-site
 * developers need no hardware and no system packages.
 */
export async function createDemoRegistry(): Promise<MockReaderRegistry> {
  const registry = new MockReaderRegistry();
  for (const name of DEMO_READERS) registry.addReader(name);
  for (const name of DEMO_READERS) await registry.insertCard(name, await createDemoCard(name));
  return registry;
}
