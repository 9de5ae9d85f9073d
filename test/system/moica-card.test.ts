import { execFile, execFileSync } from 'node:child_process';
import { verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { PcscReaderRegistry } from '../../src/readers/pcsc-registry.js';
import { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';
import type { VirtualCard } from '../../src/emulator/virtual-card.js';
import { type MoicaTestPki, getTestPki } from '../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card } from '../../src/emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../../src/emulator/moica/virtual-moica-gen2.js';
import type { VirtualMoicaCard } from '../../src/emulator/moica/virtual-moica-base.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { EventRecorder, unplugAll } from '../helpers/events.js';
import { Pcscd, VPCD_PORTS, VPCD_READERS, describeSystem } from '../helpers/system-rig.js';

const run = promisify(execFile);

// Each test stays well under 10 s once loopback quick ACKs are on (scripts/loopback-quickack.sh).
jest.setTimeout(20_000);

const PIN = '13572468';

describeSystem('MOICA card through real pcscd + vpcd', () => {
  const pcscd = new Pcscd();
  let registry: PcscReaderRegistry;
  let events: EventRecorder;
  let pki: MoicaTestPki;
  let dir: string;
  let caFile: string;
  const slots: VpcdCardSlot[] = [];

  function virtualCard(generation: 1 | 2, serialNumber: string): VirtualMoicaCard {
    const options = { pin: PIN, serialNumber };
    return generation === 1 ? new VirtualMoicaGen1Card(pki, options) : new VirtualMoicaGen2Card(pki, options);
  }

  async function insert(card: VirtualCard, port: number, slot = new VpcdCardSlot(card, { port })): Promise<VpcdCardSlot> {
    const since = events.events.length;
    if (!slots.includes(slot)) slots.push(slot);
    await slot.insert();
    await events.waitFor((e) => e.type === 'card-inserted' && e.reader === VPCD_READERS[VPCD_PORTS.indexOf(port as (typeof VPCD_PORTS)[number])], 5000, since);
    return slot;
  }

  /** Runs the built CLI; `stdin` is written to its standard input and closed. */
  function cli(args: string[], stdin = ''): Promise<{ stdout: string; stderr: string }> {
    // Its own state directory: the CLI keeps PIN tries there, and a test must not touch the user's.
    const running = run(process.execPath, ['bin/cardbridge.js', ...args], { timeout: 15_000, encoding: 'utf8', env: { ...process.env, CARDBRIDGE_STATE_DIR: join(dir, 'state') } });
    running.child.stdin?.end(stdin);
    return running;
  }

  beforeAll(async () => {
    pki = await getTestPki();
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-moica-system-'));
    // The cards in vpcd are built here from this process's test PKI, so verify against its CA.
    caFile = join(dir, 'test-ca.pem');
    writeFileSync(caFile, pki.caBundlePem);
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

  describe.each([1, 2] as const)('generation %i', (generation) => {
    const serialNumber = `TP0${generation}000099990000`.slice(0, 16);
    const port = VPCD_PORTS[generation - 1];
    const reader = VPCD_READERS[generation - 1];

    it('`cardbridge read moica --json` shows serial, generation and the certificates', async () => {
      await insert(virtualCard(generation, serialNumber), port);
      const { stdout } = await cli(['read', 'moica', '--json']);
      const json = JSON.parse(stdout) as { certificates: { id: string; role: string; sha256: string }[] } & Record<string, unknown>;
      expect(json).toMatchObject({ card: 'moica', reader, serialNumber, generation, holderName: pki.holder.name, idLastFour: pki.holder.idLastFour });
      expect(json.certificates.map((c) => [c.id, c.role])).toEqual([
        ['SIGN', 'sign'],
        ['KEYX', 'encrypt'],
        ['CACert', 'ca'],
        ['ROOTCACert', 'ca'],
      ]);
      expect(json.certificates[0]).toMatchObject({ publicKeyChecked: true, expired: false, keyUsage: ['digitalSignature', 'nonRepudiation'] });
    });

    it('`cardbridge sign --pin-stdin --format cms --out` makes a CMS that openssl verifies against the test CA', async () => {
      const card = virtualCard(generation, serialNumber);
      await insert(card, port);
      const input = join(dir, `document-${generation}.txt`);
      const output = join(dir, `document-${generation}.p7s`);
      const data = Buffer.from(`第 ${generation} 代卡片簽章測試 / generation ${generation} signing test\n`);
      writeFileSync(input, data);
      const { stdout, stderr } = await cli(['sign', '--pin-stdin', '--in', input, '--format', 'cms', '--out', output, '--reader', reader], `${PIN}\n`);
      expect(stdout).toBe('');
      expect(stderr).toMatch(new RegExp(`^Signed .*: cms \\(attached, DER\\), sha256, \\d+-byte signature written to .*; signer ${pki.holder.name} \\(card ${serialNumber} in "${reader}"\\)\\n$`));
      expect(stderr).not.toContain(PIN);
      const verified = execFileSync('openssl', ['cms', '-verify', '-CAfile', caFile, '-in', output, '-inform', 'DER'], { stdio: ['ignore', 'pipe', 'pipe'] });
      expect(verified.equals(data)).toBe(true);
      expect(card.plainVerifyCount).toBe(0);
    });

    it('a wrong PIN through the CLI reports the tries left', async () => {
      const card = virtualCard(generation, serialNumber);
      await insert(card, port);
      const input = join(dir, 'wrong-pin.txt');
      writeFileSync(input, 'x');
      const failed = await cli(['sign', '--pin-stdin', '--in', input], '000000\n').then(
        () => undefined,
        (e: { code?: number; stderr?: string }) => e,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toMatch(/^cardbridge: Wrong PIN: 2 tries left \[PinIncorrect\]$/m);
      expect(card.triesLeft).toBe(2);
    });

    it('removing the card mid-signature gives CardRemoved; after reinsertion the next signature works', async () => {
      const card = virtualCard(generation, serialNumber);
      let armed = true;
      let slot: VpcdCardSlot | undefined;
      let pulled: Promise<void> | undefined;
      // Pulls the card out when the first half of the private-key operation (80/84 EA 82) arrives:
      // the card never answers it.
      const flaky: VirtualCard = {
        atr: card.atr,
        reset: () => card.reset(),
        process: (command) => {
          if (armed && command[1] === 0xea && command[2] === 0x82) {
            armed = false;
            pulled = slot!.remove();
          }
          return card.process(command);
        },
      };
      slot = await insert(flaky, port);
      const service = new MoicaService(registry);
      const data = Buffer.from('pulled out mid-signature');
      const since = events.events.length;
      await expect(service.sign({ data, format: 'pkcs1', reader }, PIN)).rejects.toMatchObject({ code: 'CardRemoved', reader });
      expect(armed).toBe(false);
      await pulled;
      await events.waitFor((e) => e.type === 'card-removed' && e.reader === reader, 5000, since);

      card.reset();
      await insert(flaky, port, slot);
      const { signature } = await service.sign({ data, format: 'pkcs1', reader }, PIN);
      expect(verify('sha256', data, pki.sign.publicKey, signature)).toBe(true);
      expect(card.triesLeft).toBe(3);
    });
  });

  it('--reader picks one of two MOICA cards; the summary names reader and serial', async () => {
    await insert(virtualCard(1, 'TP01000011110000'), VPCD_PORTS[0]);
    await insert(virtualCard(2, 'TP02000022220000'), VPCD_PORTS[1]);
    const second = JSON.parse((await cli(['read', 'moica', '--json', '--reader', VPCD_READERS[1]])).stdout) as Record<string, unknown>;
    expect(second).toMatchObject({ reader: VPCD_READERS[1], serialNumber: 'TP02000022220000', generation: 2 });
    const first = (await cli(['read', 'moica', '--reader', VPCD_READERS[0]])).stdout;
    expect(first).toMatch(/^Citizen certificate card \(自然人憑證\) in Virtual PCD 00 00$/m);
    expect(first).toMatch(/Serial number\s+TP01000011110000$/m);
    expect(first).toMatch(/Generation\s+1$/m);
  });
});
