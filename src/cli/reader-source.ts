import { PcscReaderRegistry } from '../readers/pcsc-registry.js';
import type { ReaderRegistry } from '../readers/types.js';
import { createDemoRegistry } from '../demo/demo-readers.js';

/** Real readers through pcscd, or the demo's mock readers with virtual cards (`--mock`). */
export async function openRegistry(mock: boolean): Promise<ReaderRegistry & { serviceError?: string | undefined }> {
  const registry = mock ? await createDemoRegistry() : new PcscReaderRegistry();
  await registry.start();
  return registry;
}
