import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { PcscReaderRegistry } from '../../src/readers/pcsc-registry.js';
import { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';
import type { VirtualCard } from '../../src/emulator/virtual-card.js';
import { getTestPki } from '../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen2Card } from '../../src/emulator/moica/virtual-moica-gen2.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { ReplayRegistry } from '../../src/trace/replay.js';
import { TRACE_FAKE_NHI_HOLDER } from '../../src/trace/redact.js';
import { runTraceOperation } from '../../src/trace/operations.js';
import { parseTrace } from '../../src/trace/trace-file.js';
import { EventRecorder, unplugAll } from '../helpers/events.js';
import { Pcscd, VPCD_PORTS, VPCD_READERS, describeSystem } from '../helpers/system-rig.js';

const run = promisify(execFile);
jest.setTimeout(30_000);

const PIN = '24681357';

/**
 * What docs/field-testing.md tells a citizen to run, over real pcscd: `doctor --card`, then
 * `cardbridge trace` without --virtual. The traces it writes replay through the drivers.
 */
describeSystem('field testing through real pcscd + vpcd', () => {
  const pcscd = new Pcscd();
  let registry: PcscReaderRegistry;
  let events: EventRecorder;
  let dir: string;
  const slots: VpcdCardSlot[] = [];

  async function insert(card: VirtualCard, port: number): Promise<void> {
    const since = events.events.length;
    const slot = new VpcdCardSlot(card, { port });
    slots.push(slot);
    await slot.insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
  }

  function cli(args: string[], stdin = ''): Promise<{ stdout: string; stderr: string }> {
    const running = run(process.execPath, ['bin/cardbridge.js', ...args], { timeout: 20_000, encoding: 'utf8' });
    running.child.stdin?.end(stdin);
    return running;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-trace-system-'));
    await pcscd.start();
    registry = new PcscReaderRegistry({ reconnectIntervalMs: 250 });
    events = new EventRecorder(registry);
    await registry.start();
  });

  afterEach(() => unplugAll(slots, events));

  afterAll(async () => {
    await registry?.stop();
    await pcscd.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('doctor --card, then trace nhi-read of a T=0 card: the trace replays and holds the fake holder only', async () => {
    await insert(new VirtualNhiCard({ identity: NHI_TEST_IDENTITY, t0: true }), VPCD_PORTS[0]);
    const doctor = await cli(['doctor', '--card', '--reader', VPCD_READERS[0]]);
    expect(doctor.stdout).toMatch(/^ok {4}Card in Virtual PCD 00 00: basic data: readable and valid/m);
    const out = join(dir, 'nhi.json');
    const { stderr } = await cli(['trace', 'nhi-read', '--out', out]);
    expect(stderr).toMatch(/Trace of nhi-read written/);
    const text = readFileSync(out, 'utf8');
    const trace = parseTrace(text);
    expect(trace).toMatchObject({ source: 'pcsc', outcome: { ok: true }, sessions: [{ reader: VPCD_READERS[0], cardType: { kind: 'nhi' } }] });
    for (const secret of [NHI_TEST_IDENTITY.idNumber, Buffer.from(NHI_TEST_IDENTITY.idNumber).toString('hex').toUpperCase()]) expect(text).not.toContain(secret);
    const replay = new ReplayRegistry(trace);
    expect(await new NhiService(replay).readBasic()).toMatchObject({ idNumber: TRACE_FAKE_NHI_HOLDER.idNumber });
    replay.assertComplete();
  });

  it('trace moica-sign of a generation 2 card with the PIN piped in: no PIN in the file, and it replays', async () => {
    await insert(new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN }), VPCD_PORTS[1]);
    const out = join(dir, 'gen2.json');
    const { stdout } = await cli(['trace', 'moica-sign', '--pin-stdin', '--reader', VPCD_READERS[1], '--out', out], `${PIN}\n`);
    expect(stdout).toMatch(/^MOICA generation 2 card signed 21 bytes/);
    const text = readFileSync(out, 'utf8');
    for (const secret of [PIN, Buffer.from(PIN).toString('hex').toUpperCase()]) expect(text).not.toContain(secret);
    const trace = parseTrace(text);
    const replay = new ReplayRegistry(trace);
    await runTraceOperation('moica-sign', { registry: replay, random: replay.random, pin: async () => '000000' });
    replay.assertComplete();
  });
});
