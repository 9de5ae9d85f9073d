import { GenericTestCard } from '../emulator/test-card.js';
import { MockReaderRegistry } from '../readers/mock-registry.js';

export const DEMO_READERS = ['Mock Reader 0', 'Mock Reader 1'] as const;

/**
 * The demo's readers: virtual cards in in-process mock readers, so the demo and relying-site
 * developers need no hardware and no system packages.
 */
export async function createDemoRegistry(): Promise<MockReaderRegistry> {
  const registry = new MockReaderRegistry();
  for (const name of DEMO_READERS) registry.addReader(name);
  await registry.insertCard(DEMO_READERS[0], new GenericTestCard());
  return registry;
}
