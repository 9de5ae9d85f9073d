import { VirtualNhiCard } from '../emulator/nhi/virtual-nhi-card.js';
import { GenericTestCard } from '../emulator/test-card.js';
import type { VirtualCard } from '../emulator/virtual-card.js';
import { MockReaderRegistry } from '../readers/mock-registry.js';

export const DEMO_READERS = ['Mock Reader 0', 'Mock Reader 1'] as const;

/**
 * The card each demo reader gets: a virtual NHI card (fake identity 王小明) in reader 0; reader 1
 * still holds the generic test card until the MOICA virtual card exists.
 */
export function createDemoCard(reader: (typeof DEMO_READERS)[number]): VirtualCard {
  return reader === DEMO_READERS[0] ? new VirtualNhiCard() : new GenericTestCard();
}

/**
 * The demo's readers: virtual cards in in-process mock readers, so the demo and relying-site
 * developers need no hardware and no system packages.
 */
export async function createDemoRegistry(): Promise<MockReaderRegistry> {
  const registry = new MockReaderRegistry();
  for (const name of DEMO_READERS) registry.addReader(name);
  await registry.insertCard(DEMO_READERS[0], createDemoCard(DEMO_READERS[0]));
  return registry;
}
