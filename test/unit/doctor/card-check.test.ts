import { jest } from '@jest/globals';
import { runCardChecks, readOnlyRegistry } from '../../../src/doctor/card-check.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card } from '../../../src/emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';

// Virtual MOICA cards generate their test PKI (RSA keys) once per file: slow on a busy machine.
jest.setTimeout(30_000);

function capturing(card: VirtualCard, received: Buffer[]): VirtualCard {
  return { atr: card.atr, reset: () => card.reset?.(), process: (c) => (received.push(Buffer.from(c)), card.process(c)) };
}

async function rig(cards: Record<string, VirtualCard | undefined>) {
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
  for (const [name, card] of Object.entries(cards)) {
    registry.addReader(name);
    if (card) await registry.insertCard(name, card);
  }
  return registry;
}

describe('doctor --card', () => {
  it('reports each reader, ATR, card type and what reads without a PIN; never sends a PIN command', async () => {
    const pki = await getTestPki();
    const received: Buffer[] = [];
    const registry = await rig({
      'R nhi': capturing(new VirtualNhiCard(), received),
      'R gen1': capturing(new VirtualMoicaGen1Card(pki, { pin: '123456' }), received),
      'R gen2': capturing(new VirtualMoicaGen2Card(pki, { pin: '123456' }), received),
      'R empty': undefined,
    });
    const checks = await runCardChecks(registry);
    const text = checks.map((c) => `${c.status} ${c.title}: ${c.detail}`).join('\n');
    expect(text).toMatch(/^ok Reader R nhi: NHI card \(健保卡\), ATR 3B888001/m);
    expect(text).toMatch(/^ok Card in R nhi: basic data: readable and valid; card status: readable; card id: readable \(12 bytes\)$/m);
    expect(text).toMatch(/^ok Reader R gen1: MOICA card \(自然人憑證\) generation 1, ATR 3BB81300/m);
    expect(text).toMatch(/^ok Card in R gen2: serial number TP03000012345678, version CHT V5\.2; 4 certificates: sign \(valid to \d{4}-\d\d-\d\d, key on card\), encrypt/m);
    expect(text).toMatch(/^info Reader R empty: no card inserted$/m);
    // Nothing personal in the report: no name, no ID number, no card number.
    for (const secret of ['王小明', NHI_TEST_IDENTITY.idNumber, NHI_TEST_IDENTITY.cardNumber]) expect(text).not.toContain(secret);
    expect(received.length).toBeGreaterThan(20);
    expect(received.filter((c) => [0x20, 0x21, 0x24, 0x2c].includes(c[1]!))).toEqual([]);
  });

  it('warns about a card it does not know, with its ATR', async () => {
    const registry = await rig({ R: new GenericTestCard() });
    const checks = await runCardChecks(registry);
    expect(checks.find((c) => c.title === 'Reader R')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^not a card cardbridge knows \(ATR [0-9A-F]+\)$/) });
  });

  it('fails with a fix when there is no reader', async () => {
    const checks = await runCardChecks(await rig({}));
    expect(checks).toEqual([expect.objectContaining({ status: 'fail', detail: 'no card reader found', fix: expect.stringContaining('Plug in the reader') })]);
  });

  it('its registry refuses PIN commands before they reach the card', async () => {
    const received: Buffer[] = [];
    const registry = await rig({ R: capturing(new VirtualMoicaGen1Card(await getTestPki(), { pin: '123456' }), received) });
    received.length = 0;
    const guarded = readOnlyRegistry(registry);
    await expect(guarded.withCard({}, (s) => s.transmit({ cla: 0x8c, ins: 0x20, p1: 0, p2: 1, data: Buffer.alloc(32) }))).rejects.toThrow(/never sends a PIN/);
    await expect(guarded.withCard({ exclusive: true }, async (s) => s.exclusive)).resolves.toBe(false);
    expect(received).toEqual([]);
  });

  it('cardbridge doctor --card --mock prints the checks', async () => {
    const io = captureIO();
    expect(await main(['doctor', '--card', '--mock'], io)).toBe(0);
    expect(io.stdout.join('\n')).toMatch(/^ok {4}Reader Mock Reader 0: NHI card \(健保卡\)/m);
    expect(io.stdout.join('\n')).toMatch(/^ok {4}Card in Mock Reader 1: serial number/m);
    expect(io.stdout.at(-1)).toMatch(/cardbridge trace/);
  });

  it('--reader checks one reader, --json prints the checks as an object', async () => {
    const io = captureIO();
    expect(await main(['doctor', '--card', '--mock', '--json', '--reader', 'Mock Reader 1'], io)).toBe(0);
    const report = JSON.parse(io.stdout.join('\n')) as { ok: boolean; checks: { title: string }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.title)).toEqual(['Reader Mock Reader 1', 'Card in Mock Reader 1']);
    const missing = captureIO();
    expect(await main(['doctor', '--card', '--mock', '--reader', 'Nope'], missing)).toBe(1);
    expect(missing.stdout[0]).toMatch(/FAIL {2}Card readers: no reader named "Nope"/);
    const usage = captureIO();
    expect(await main(['doctor', '--mock'], usage)).toBe(2);
    expect(usage.stderr[0]).toMatch(/--reader and --mock go with --card/);
  });
});
