import { execFile } from 'node:child_process';
import { jest } from '@jest/globals';
import { promisify } from 'node:util';
import { PcscReaderRegistry } from '../../src/readers/pcsc-registry.js';
import { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';
import { GenericTestCard } from '../../src/emulator/test-card.js';
import { NHI_APPLET_AID } from '../../src/cards/nhi/commands.js';
import type { VirtualCard } from '../../src/emulator/virtual-card.js';
import { EventRecorder } from '../helpers/events.js';
import { Pcscd, VPCD_PORTS, VPCD_READERS, describeSystem } from '../helpers/system-rig.js';

const run = promisify(execFile);
const [READER0, READER1] = VPCD_READERS;
const GET_DATA = { cla: 0, ins: 0xca, p1: 0, p2: 0, le: 256 };

// pcscd restarts and its ~400 ms presence polling make these slower than unit tests.
jest.setTimeout(30_000);

describeSystem('real pcscd + vpcd', () => {
  const pcscd = new Pcscd();
  let registry: PcscReaderRegistry;
  let events: EventRecorder;
  const slots: VpcdCardSlot[] = [];

  function slot(card: VirtualCard, port: number = VPCD_PORTS[0]): VpcdCardSlot {
    const s = new VpcdCardSlot(card, { port });
    slots.push(s);
    return s;
  }

  beforeAll(async () => {
    await pcscd.start();
    registry = new PcscReaderRegistry({ reconnectIntervalMs: 250 });
    events = new EventRecorder(registry);
    await registry.start();
  });

  afterEach(async () => {
    await Promise.all(slots.splice(0).map((s) => s.remove()));
  });

  afterAll(async () => {
    await registry?.stop();
    await pcscd.dispose();
  });

  it('sees both vpcd readers, empty', () => {
    expect(registry.serviceAvailable).toBe(true);
    expect(registry.readers()).toEqual([{ name: READER0 }, { name: READER1 }]);
  });

  it('announces insertion with ATR and card type, then removal', async () => {
    const card = new GenericTestCard({ aids: [NHI_APPLET_AID] });
    const since = events.events.length;
    await slot(card).insert();
    const inserted = await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
    expect(inserted).toEqual({ type: 'card-inserted', reader: READER0, card: { atr: card.atr.toString('hex').toUpperCase(), type: { kind: 'nhi' }, label: 'health insurance card (健保卡)' } });
    await slots[0]!.remove();
    await expect(events.waitFor((e) => e.type === 'card-removed', 5000, since)).resolves.toEqual({ type: 'card-removed', reader: READER0 });
    expect(registry.readers()[0]).toEqual({ name: READER0 });
  });

  it('round-trips APDUs, short and extended, through pcscd', async () => {
    const card = new GenericTestCard();
    const since = events.events.length;
    await slot(card, VPCD_PORTS[1]).insert();
    await events.waitFor((e) => e.type === 'card-inserted' && e.reader === READER1, 5000, since);
    const payload = Buffer.from(Array.from({ length: 255 }, (_, i) => 255 - i));
    const echoed = await registry.withCard({ reader: READER1 }, (s) => s.transmit({ cla: 0, ins: 0xee, p1: 0, p2: 0, data: payload, le: 256 }));
    expect(echoed).toEqual({ data: payload, sw: 0x9000 });
    expect(card.received.at(-1)).toEqual(Buffer.concat([Buffer.from([0, 0xee, 0, 0, 255]), payload, Buffer.from([0])]));
  });

  it('handles a T=0-style card answering 61 xx and 6C xx', async () => {
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 3) & 0xff));
    const chained = new GenericTestCard({ t0: true, dataObject: data });
    const since = events.events.length;
    await slot(chained).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
    const mark = chained.received.length; // recognition sent APDUs of its own
    const long = await registry.withCard({ reader: READER0 }, (s) => s.transmit(GET_DATA));
    expect(long).toEqual({ data, sw: 0x9000 });
    expect(chained.received.slice(mark).map((c) => c.toString('hex'))).toEqual(['00ca000000', '00c0000000', '00c000002c']);
    await slots[0]!.remove();
    await events.waitFor((e) => e.type === 'card-removed', 5000, since);

    const wrongLe = new GenericTestCard({ t0: true, dataObject: Buffer.from('short') });
    await slot(wrongLe).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, events.events.length - 0);
    const short = await registry.withCard({ reader: READER0 }, (s) => s.transmit(GET_DATA));
    expect(short).toEqual({ data: Buffer.from('short'), sw: 0x9000 });
    expect(wrongLe.received.slice(-2).map((c) => c.toString('hex'))).toEqual(['00ca000000', '00ca000005']);
  });

  it('resets the card after an exclusive operation', async () => {
    const card = new GenericTestCard();
    const since = events.events.length;
    await slot(card).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
    const resetsBefore = card.resets;
    await registry.withCard({ reader: READER0, exclusive: true }, (s) => s.transmit(GET_DATA));
    expect(card.resets).toBeGreaterThan(resetsBefore);
  });

  it('reports removal mid-operation as CardRemoved, and the next card works', async () => {
    const card = new GenericTestCard();
    const since = events.events.length;
    const s = slot(card);
    await s.insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
    const attempt = registry.withCard({ reader: READER0 }, async (session) => {
      await session.transmit(GET_DATA);
      await s.remove();
      await new Promise((r) => setTimeout(r, 50));
      return session.transmit(GET_DATA);
    });
    await expect(attempt).rejects.toMatchObject({ code: 'CardRemoved' });
    await events.waitFor((e) => e.type === 'card-removed', 5000, since);
    const next = new GenericTestCard({ dataObject: Buffer.from('again') });
    await slot(next).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, events.events.length);
    await expect(registry.withCard({ reader: READER0 }, (session) => session.transmit(GET_DATA))).resolves.toEqual({ data: Buffer.from('again'), sw: 0x9000 });
  });

  it('lists the virtual card with `cardbridge readers --json`', async () => {
    const card = new GenericTestCard({ aids: [NHI_APPLET_AID] });
    const since = events.events.length;
    await slot(card, VPCD_PORTS[1]).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);
    const { stdout } = await run(process.execPath, ['bin/cardbridge.js', 'readers', '--json'], { timeout: 15_000 });
    const listed = JSON.parse(stdout) as { available: boolean; readers: unknown[] };
    expect(listed).toEqual({
      available: true,
      readers: [
        { name: READER0, cardPresent: false, atr: null, card: null },
        { name: READER1, cardPresent: true, atr: card.atr.toString('hex').toUpperCase(), card: { kind: 'nhi', label: 'health insurance card (健保卡)' } },
      ],
    });
  });

  it('recovers when pcscd is killed and restarted: readers and card re-announced within 5 s', async () => {
    const card = new GenericTestCard({ aids: [NHI_APPLET_AID] });
    const since = events.events.length;
    await slot(card).insert();
    await events.waitFor((e) => e.type === 'card-inserted', 5000, since);

    const beforeKill = events.events.length;
    await pcscd.stop('SIGKILL');
    await events.waitFor((e) => e.type === 'service-lost', 5000, beforeKill);
    expect(registry.serviceAvailable).toBe(false);
    await expect(registry.withCard({}, async () => 1)).rejects.toMatchObject({ code: 'NoService' });

    const restartedAt = Date.now();
    const beforeRestart = events.events.length;
    await pcscd.start();
    await events.waitFor((e) => e.type === 'service-restored', 5000, beforeRestart);
    await events.waitFor((e) => e.type === 'card-inserted' && e.reader === READER0, 5000, beforeRestart);
    expect(Date.now() - restartedAt).toBeLessThan(5000);
    expect(registry.readers().map((r) => r.name)).toEqual([READER0, READER1]);
    await expect(registry.withCard({ kind: 'nhi' }, (s) => s.transmit(GET_DATA))).resolves.toMatchObject({ sw: 0x9000 });
  });
});
