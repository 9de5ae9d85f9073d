import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { NHI_APPLET_AID } from '../../../src/cards/nhi/commands.js';
import { MOICA_GEN2_APPLET_AID } from '../../../src/cards/moica/commands.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { EventRecorder } from '../../helpers/events.js';

const GET_DATA = { cla: 0, ins: 0xca, p1: 0, p2: 0, le: 4 };

function registryWith(...readers: string[]) {
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5, 5] });
  const recorder = new EventRecorder(registry);
  for (const r of readers) registry.addReader(r);
  return { registry, recorder };
}

/** Wraps a card so a test can act between APDUs (e.g. pull the card out mid-operation). */
function instrumented(card: VirtualCard, beforeEach: (n: number) => void): VirtualCard {
  let n = 0;
  return { atr: card.atr, reset: () => card.reset?.(), process: (c) => (beforeEach(++n), card.process(c)) };
}

describe('mock reader registry', () => {
  it('announces readers and recognised cards, then their removal', async () => {
    const { registry, recorder } = registryWith('R0', 'R1');
    await registry.insertCard('R0', new GenericTestCard({ aids: [NHI_APPLET_AID] }));
    await registry.insertCard('R1', new GenericTestCard({ aids: [MOICA_GEN2_APPLET_AID] }));
    registry.removeCard('R0');
    registry.removeReader('R1');
    expect(recorder.events).toEqual([
      { type: 'reader-added', reader: 'R0' },
      { type: 'reader-added', reader: 'R1' },
      { type: 'card-inserted', reader: 'R0', card: { atr: '3B8880010000000000000000', type: { kind: 'nhi' }, label: 'health insurance card (健保卡)' } },
      { type: 'card-inserted', reader: 'R1', card: { atr: '3B8880010000000000000000', type: { kind: 'moica', generation: 2 }, label: 'citizen certificate card (自然人憑證), generation 2' } },
      { type: 'card-removed', reader: 'R0' },
      { type: 'card-removed', reader: 'R1' },
      { type: 'reader-removed', reader: 'R1' },
    ]);
    expect(registry.readers()).toEqual([{ name: 'R0' }]);
  });

  it('routes to the reader holding the requested kind of card', async () => {
    const { registry } = registryWith('R0', 'R1');
    const other = new GenericTestCard();
    const nhi = new GenericTestCard({ aids: [NHI_APPLET_AID], dataObject: Buffer.from('nhi!') });
    await registry.insertCard('R0', other);
    await registry.insertCard('R1', nhi);
    const response = await registry.withCard({ kind: 'nhi' }, (s) => s.transmit(GET_DATA));
    expect(response.data.toString()).toBe('nhi!');
    const reader = await registry.withCard({ kind: 'nhi' }, async (s) => s.reader);
    expect(reader).toBe('R1');
  });

  it('explains what is missing: no reader, no card, wrong card, unknown reader name', async () => {
    const empty = new MockReaderRegistry();
    await expect(empty.withCard({}, async () => 1)).rejects.toMatchObject({ code: 'NoReader' });
    const { registry } = registryWith('R0');
    await expect(registry.withCard({}, async () => 1)).rejects.toMatchObject({ code: 'NoCard' });
    await expect(registry.withCard({ reader: 'nope' }, async () => 1)).rejects.toMatchObject({ code: 'NoReader' });
    await registry.insertCard('R0', new GenericTestCard());
    await expect(registry.withCard({ kind: 'moica' }, async () => 1)).rejects.toMatchObject({
      code: 'WrongCard',
      message: expect.stringContaining('自然人憑證'),
    });
  });

  it('locate decides which card serves a request, with the same errors as withCard', async () => {
    const empty = new MockReaderRegistry();
    await expect(empty.locate({})).rejects.toMatchObject({ code: 'NoReader' });
    expect(() => empty.locateReaders({})).toThrow(expect.objectContaining({ code: 'NoReader' }));
    const { registry } = registryWith('R0', 'R1');
    await expect(registry.locate({ kind: 'nhi' })).rejects.toMatchObject({ code: 'NoCard', hint: 'Insert a health insurance card (健保卡).' });
    await registry.insertCard('R1', new GenericTestCard({ aids: [NHI_APPLET_AID] }));
    await expect(registry.locate({ kind: 'moica' })).rejects.toMatchObject({ code: 'WrongCard' });
    await expect(registry.locate({ kind: 'nhi', reader: 'R0' })).rejects.toMatchObject({ code: 'NoCard' });
    await expect(registry.locate({ kind: 'nhi', reader: 'R9' })).rejects.toMatchObject({ code: 'NoReader' });
    await expect(registry.locate({ kind: 'nhi' })).resolves.toEqual({
      reader: 'R1',
      card: { atr: '3B8880010000000000000000', type: { kind: 'nhi' }, label: 'health insurance card (健保卡)' },
    });
    expect(registry.locateReaders({ reader: 'R0' })).toEqual([{ name: 'R0' }]);
    expect(registry.locateReaders({}).map((r) => r.name)).toEqual(['R0', 'R1']);
  });

  it('lets a programming error through as itself instead of calling it a card fault', async () => {
    const { registry } = registryWith('R0');
    await registry.insertCard('R0', new GenericTestCard());
    const bug = await registry
      .withCard({}, async (s) => {
        await s.transmit(GET_DATA);
        return (undefined as unknown as { x: number }).x;
      })
      .catch((e: unknown) => e);
    expect(bug).toBeInstanceOf(TypeError);
    expect(bug).not.toHaveProperty('code');
  });

  it('locate reports NoService first when the smart-card service is down', async () => {
    class Down extends MockReaderRegistry {
      override get serviceAvailable(): boolean {
        return false;
      }
    }
    const down = new Down();
    down.addReader('R0');
    await expect(down.locate({ kind: 'nhi' })).rejects.toMatchObject({ code: 'NoService' });
    expect(() => down.locateReaders({})).toThrow(expect.objectContaining({ code: 'NoService' }));
  });

  it('serialises concurrent operations on one card: no interleaved APDUs', async () => {
    const { registry } = registryWith('R0');
    const card = new GenericTestCard();
    await registry.insertCard('R0', card);
    card.received.length = 0;
    const operation = (tag: number) =>
      registry.withCard({}, async (s) => {
        for (let i = 0; i < 3; i++) {
          await s.transmit({ cla: 0, ins: 0xee, p1: tag, p2: i, data: Buffer.from([tag]) });
          await new Promise((r) => setTimeout(r, 1));
        }
        return tag;
      });
    const results = await Promise.all([1, 2, 3, 4, 5].map(operation));
    expect(results).toEqual([1, 2, 3, 4, 5]);
    const tags = card.received.map((b) => b[2]);
    expect(tags).toEqual([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]);
  });

  it('a failing operation does not block the next one', async () => {
    const { registry } = registryWith('R0');
    await registry.insertCard('R0', new GenericTestCard());
    await expect(registry.withCard({}, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(registry.withCard({}, async (s) => (await s.transmit(GET_DATA)).sw)).resolves.toBe(0x9000);
  });

  it('resets the card after an exclusive operation and not after a shared one', async () => {
    const { registry } = registryWith('R0');
    const card = new GenericTestCard();
    await registry.insertCard('R0', card);
    const before = card.resets;
    await registry.withCard({}, (s) => s.transmit(GET_DATA));
    expect(card.resets).toBe(before);
    await registry.withCard({ exclusive: true }, (s) => s.transmit(GET_DATA));
    expect(card.resets).toBe(before + 1);
  });

  it('retries while another program holds the card, then reports Busy', async () => {
    const { registry } = registryWith('R0');
    await registry.insertCard('R0', new GenericTestCard());
    const release = registry.holdExclusively('R0');
    await expect(registry.withCard({}, (s) => s.transmit(GET_DATA))).rejects.toMatchObject({ code: 'Busy', hint: expect.stringContaining('other programs') });
    // An operation answered from memory never connects, so another program's hold does not stop it.
    await expect(registry.withCard({}, async () => 1)).resolves.toBe(1);
    setTimeout(release, 2);
    const slow = new MockReaderRegistry({ sharingRetryDelaysMs: [20, 20, 20] });
    slow.addReader('R0');
    await slow.insertCard('R0', new GenericTestCard());
    const releaseSlow = slow.holdExclusively('R0');
    setTimeout(releaseSlow, 10);
    await expect(slow.withCard({}, async () => 'got it')).resolves.toBe('got it');
  });

  it('turns removal mid-operation into CardRemoved, and the next card works', async () => {
    const { registry } = registryWith('R0');
    const inner = new GenericTestCard();
    let removeAt = Infinity; // armed after recognition, which sends its own APDUs
    await registry.insertCard('R0', instrumented(inner, (n) => n === removeAt && registry.removeCard('R0')));
    removeAt = inner.received.length + 2;
    const attempt = registry.withCard({}, async (s) => {
      await s.transmit(GET_DATA);
      await s.transmit(GET_DATA);
      return 'finished';
    });
    await expect(attempt).rejects.toMatchObject({ code: 'CardRemoved' });
    await registry.insertCard('R0', new GenericTestCard());
    await expect(registry.withCard({}, async (s) => (await s.transmit(GET_DATA)).sw)).resolves.toBe(0x9000);
  });

  it('frees the card when an operation runs past its time limit', async () => {
    const registry = new MockReaderRegistry({ operationTimeoutMs: 30 });
    registry.addReader('R0');
    await registry.insertCard('R0', new GenericTestCard());
    await expect(registry.withCard({}, () => new Promise(() => undefined))).rejects.toMatchObject({ code: 'Timeout' });
    await expect(registry.withCard({}, async () => 'next')).resolves.toBe('next');
  });

  it('refuses APDUs from a session that has ended', async () => {
    const { registry } = registryWith('R0');
    await registry.insertCard('R0', new GenericTestCard());
    const session = await registry.withCard({}, async (s) => s);
    await expect(session.transmit(GET_DATA)).rejects.toBeDefined();
  });

  it('reports a card it cannot recognise as unknown instead of failing', async () => {
    const { registry, recorder } = registryWith('R0');
    const mute: VirtualCard = { atr: Buffer.from('3B00', 'hex'), process: () => Promise.reject(new Error('mute')) };
    await registry.insertCard('R0', mute);
    expect(recorder.events.at(-1)).toEqual({ type: 'card-inserted', reader: 'R0', card: { atr: '3B00', type: { kind: 'unknown' }, label: 'unknown card' } });
  });
});
