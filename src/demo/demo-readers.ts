import { MockReaderRegistry } from '../readers/mock-registry.js';
import { type DemoCardKind, MockControl, type TestPkiSource, createVirtualCard } from './mock-control.js';

export { DEMO_MOICA_PIN } from './mock-control.js';

export const DEMO_READERS = ['Mock Reader 0', 'Mock Reader 1'] as const;

/** What each demo reader holds at start: the fake 王小明's 健保卡, the fake 測試一's 自然人憑證. */
export const DEMO_CARDS: Record<(typeof DEMO_READERS)[number], DemoCardKind> = {
  'Mock Reader 0': 'nhi',
  'Mock Reader 1': 'moica-gen2',
};

export function createDemoCard(reader: (typeof DEMO_READERS)[number]) {
  return createVirtualCard(DEMO_CARDS[reader]);
}

/**
 * The demo's readers: virtual cards in in-process mock readers, so the demo and relying-site
 * developers need no hardware and no system packages.
 */
export async function createDemoRegistry(): Promise<MockReaderRegistry> {
  return (await createDemoReaders()).registry;
}

export async function createDemoReaders(pki?: TestPkiSource): Promise<{ registry: MockReaderRegistry; control: MockControl }> {
  const registry = new MockReaderRegistry();
  const control = new MockControl(registry, pki);
  for (const name of DEMO_READERS) registry.addReader(name);
  for (const name of DEMO_READERS) await control.insert(name, DEMO_CARDS[name]);
  return { registry, control };
}
