import { PcscReaderRegistry } from '../readers/pcsc-registry.js';
import type { ReaderRegistry } from '../readers/types.js';

/** Real readers through pcscd, or the demo's mock readers with virtual cards (`--mock`). */
export async function openRegistry(mock: boolean): Promise<ReaderRegistry & { serviceError?: string | undefined }> {
  // The demo's virtual cards are loaded only when asked for.
  const registry = mock ? await (await import('../demo/demo-readers.js')).createDemoRegistry() : new PcscReaderRegistry();
  await registry.start();
  return registry;
}
