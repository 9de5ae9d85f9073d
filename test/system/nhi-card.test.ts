import { execFile } from 'node:child_process';
import { verify } from 'node:crypto';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { PcscReaderRegistry } from '../../src/readers/pcsc-registry.js';
import { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';
import { NHI_TEST_IDENTITY, NHI_TEST_IDENTITY_HKSCS, VirtualNhiCard } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { EmulatedSam } from '../../src/emulator/nhi/emulated-sam.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { EventRecorder } from '../helpers/events.js';
import { Pcscd, VPCD_PORTS, VPCD_READERS, describeSystem } from '../helpers/system-rig.js';

const run = promisify(execFile);

jest.setTimeout(30_000);

describeSystem('NHI card through real pcscd + vpcd', () => {
  const pcscd = new Pcscd();
  let registry: PcscReaderRegistry;
  let events: EventRecorder;
  let sam: EmulatedSam;
  const slots: VpcdCardSlot[] = [];

  async function insert(card: VirtualNhiCard, port: number = VPCD_PORTS[0]): Promise<void> {
    const since = events.events.length;
    const slot = new VpcdCardSlot(card, { port });
    slots.push(slot);
    await slot.insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
  }

  beforeAll(async () => {
    await pcscd.start();
    registry = new PcscReaderRegistry({ reconnectIntervalMs: 250 });
    events = new EventRecorder(registry);
    await registry.start();
    sam = await EmulatedSam.start();
  });

  afterEach(async () => {
    const since = events.events.length;
    const removing = slots.splice(0);
    await Promise.all(removing.map((s) => s.remove()));
    for (let i = 0; i < removing.length; i++) await events.waitFor((e) => e.type === 'card-removed', 5000, since + i);
  });

  afterAll(async () => {
    await sam?.close();
    await registry?.stop();
    await pcscd.dispose();
  });

  it('`cardbridge read nhi --json --reveal` prints the virtual card identity', async () => {
    await insert(new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }), VPCD_PORTS[1]);
    const { stdout } = await run(process.execPath, ['bin/cardbridge.js', 'read', 'nhi', '--json', '--reveal'], { timeout: 15_000 });
    expect(JSON.parse(stdout)).toMatchObject({
      card: 'nhi',
      reader: VPCD_READERS[1],
      cardNumber: NHI_TEST_IDENTITY.cardNumber,
      name: NHI_TEST_IDENTITY.name,
      nameComplete: true,
      idNumber: NHI_TEST_IDENTITY.idNumber,
      birthDate: NHI_TEST_IDENTITY.birthDate,
      sex: NHI_TEST_IDENTITY.sex,
      issueDate: NHI_TEST_IDENTITY.issueDate,
    });
  });

  it('masks the ID without --reveal', async () => {
    await insert(new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    const { stdout } = await run(process.execPath, ['bin/cardbridge.js', 'read', 'nhi'], { timeout: 15_000 });
    expect(stdout).toContain('A12345****');
    expect(stdout).not.toContain(NHI_TEST_IDENTITY.idNumber);
  });

  it('reads an HKSCS name from a T=0 card whose SELECT is refused', async () => {
    await insert(new VirtualNhiCard({ identity: NHI_TEST_IDENTITY_HKSCS, t0: true, selectUnsupported: true }));
    const basic = await new NhiService(registry).readBasic();
    expect(basic).toMatchObject({ name: NHI_TEST_IDENTITY_HKSCS.name, nameComplete: true, birthDate: NHI_TEST_IDENTITY_HKSCS.birthDate });
  });

  it('relays H_Sign between the card in pcscd and the emulated SAM; the signature verifies', async () => {
    await insert(new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    const service = new NhiService(registry, { sam: { host: sam.host, port: sam.port, stepTimeoutMs: 5000 } });
    const input = `0001${service.getRandom()}`;
    const signature = await service.hSign(input);
    expect(signature).toHaveLength(256);
    expect(verify('sha256', Buffer.from(input, 'ascii'), sam.publicKey, signature)).toBe(true);
    // The strict emulated SAM hangs up on anything outside the spec's framing: it refused nothing.
    expect(sam.refusals).toBe(0);
  });
});
