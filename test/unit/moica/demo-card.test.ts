import { verify } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { DEMO_MOICA_PIN, DEMO_READERS, createDemoRegistry } from '../../../src/demo/demo-readers.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';

describe('demo readers', () => {
  it('hold a virtual MOICA generation-2 card in Mock Reader 1 that signs', async () => {
    const registry = await createDemoRegistry();
    const reader = registry.readers().find((r) => r.name === DEMO_READERS[1]);
    expect(reader?.card?.type).toEqual({ kind: 'moica', generation: 2 });
    const service = new MoicaService(registry);
    const { signature, certificate, reader: used } = await service.sign({ data: Buffer.from('demo') }, DEMO_MOICA_PIN);
    expect(used).toBe(DEMO_READERS[1]);
    expect(verify('sha256', Buffer.from('demo'), new X509Certificate(certificate).publicKey, signature)).toBe(true);
    await registry.stop();
    // The demo generates the test PKI's RSA keys on first use: slow on a busy machine.
  }, 60_000);
});
