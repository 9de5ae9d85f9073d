import { EventEmitter } from 'node:events';
import { constants, publicDecrypt, X509Certificate } from 'node:crypto';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { PcscReaderRegistry } from '../../../src/readers/pcsc-registry.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { PIN, type Generation, virtualCard } from '../moica/helpers.js';

const R0 = 'Reader 0';

/** Counts the APDUs a card receives, so a test can tell a cached answer from a card read. */
function counted(card: VirtualCard): VirtualCard & { apdus: number } {
  const wrapper = {
    atr: card.atr,
    apdus: 0,
    reset: () => card.reset?.(),
    process: (command: Buffer) => {
      wrapper.apdus++;
      return card.process(command);
    },
  };
  return wrapper;
}

const ALICE = { ...NHI_TEST_IDENTITY, cardNumber: '000011112222', name: '王小明', idNumber: 'A123456789' };
const BOB = { ...NHI_TEST_IDENTITY, cardNumber: '000033334444', name: '陳測試', idNumber: 'B223456789' };

async function registryWith(card?: VirtualCard): Promise<MockReaderRegistry> {
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
  registry.addReader(R0);
  if (card) await registry.insertCard(R0, card);
  return registry;
}

describe('per-insertion cache', () => {
  beforeAll(() => getTestPki(), 60_000); // the test PKI's RSA keys take a while on a busy machine
  it('answers a second NHI read of the same card from memory, without touching the card', async () => {
    const card = counted(new VirtualNhiCard({ identity: ALICE }));
    const registry = await registryWith(card);
    const service = new NhiService(registry);
    const first = await service.readBasic();
    expect((await service.readCardId()).cardId.toString('latin1')).toBe(ALICE.cardNumber);
    const apdus = card.apdus;
    expect(await service.readBasic()).toEqual(first);
    expect((await service.readCardId()).cardId.toString('latin1')).toBe(ALICE.cardNumber);
    expect(card.apdus).toBe(apdus);
  });

  it('never serves the old holder’s data after a swap, even with an identical ATR', async () => {
    const alice = new VirtualNhiCard({ identity: ALICE });
    const bob = new VirtualNhiCard({ identity: BOB });
    expect(bob.atr).toEqual(alice.atr);
    const registry = await registryWith(alice);
    const service = new NhiService(registry);
    expect((await service.readBasic()).name).toBe('王小明');
    expect((await service.readCardId()).cardId.toString('latin1')).toBe(ALICE.cardNumber);
    await registry.insertCard(R0, bob);
    expect((await service.readBasic()).name).toBe('陳測試');
    expect((await service.readCardId()).cardId.toString('latin1')).toBe(BOB.cardNumber);
  });

  it.each([1, 2] as Generation[])('never serves the previous MOICA card’s serial or certificates after a swap (generation %i)', async (generation) => {
    const pki = await getTestPki();
    const first = virtualCard(generation, pki, { serialNumber: 'TP00000000000001' });
    const second = virtualCard(generation, pki, { serialNumber: 'TP00000000000002' });
    const registry = await registryWith(first);
    const service = new MoicaService(registry);
    expect((await service.cardInfo()).serialNumber).toBe('TP00000000000001');
    await service.listCertificates();
    registry.removeCard(R0);
    await registry.insertCard(R0, second);
    expect((await service.cardInfo()).serialNumber).toBe('TP00000000000002');
    expect((await service.sign({ data: Buffer.from('x'), format: 'pkcs1' }, PIN)).serialNumber).toBe('TP00000000000002');
  });

  it.each([1, 2] as Generation[])('signs correctly with certificates remembered from an earlier read (generation %i)', async (generation) => {
    const pki = await getTestPki();
    const card = counted(virtualCard(generation, pki));
    const registry = await registryWith(card);
    const service = new MoicaService(registry);
    const certificates = await service.listCertificates();
    await service.cardInfo();
    await service.sign({ data: Buffer.from('warm'), format: 'pkcs1' }, PIN);
    const before = card.apdus;
    const signed = await service.sign({ data: Buffer.from('hello'), format: 'pkcs1' }, PIN);
    expect(signed.certificate).toEqual(certificates.find((c) => c.id === 'SIGN')!.der);
    const recovered = publicDecrypt({ key: new X509Certificate(signed.certificate).publicKey, padding: constants.RSA_PKCS1_PADDING }, signed.signature);
    expect(recovered.length).toBeGreaterThan(0);
    const again = card.apdus - before;
    // A second signature sends only the PIN and key operation, never the certificate files again.
    await service.listCertificates();
    await service.cardInfo();
    expect(card.apdus - before).toBe(again);
  });

  it('holds nothing for a removed card', async () => {
    const registry = await registryWith(new VirtualNhiCard({ identity: ALICE }));
    await new NhiService(registry).readBasic();
    expect(registry.rememberedCards()).toBe(1);
    registry.removeCard(R0);
    expect(registry.rememberedCards()).toBe(0);
  });

  it('drops what it remembered when the reader goes away', async () => {
    const registry = await registryWith(new VirtualNhiCard({ identity: ALICE }));
    await new NhiService(registry).readBasic();
    registry.removeReader(R0);
    expect(registry.rememberedCards()).toBe(0);
  });

  it('does not keep what a read finished after the card was pulled out', async () => {
    const registry = await registryWith(new VirtualNhiCard({ identity: ALICE }));
    const read = registry.withCard({ kind: 'nhi' }, (session) =>
      session.remember('test.value', async () => {
        registry.removeCard(R0);
        return 'old holder';
      }),
    );
    await expect(read).rejects.toMatchObject({ code: 'CardRemoved' });
    expect(registry.rememberedCards()).toBe(0);
  });

  it('a pcscd event counter that moved means a new insertion, even with the same ATR', async () => {
    const alice = new VirtualNhiCard({ identity: ALICE });
    const bob = new VirtualNhiCard({ identity: BOB });
    const fake = fakePcsc(R0);
    fake.insert(alice, 1);
    const registry = new PcscReaderRegistry({ factory: fake.factory as never, sharingRetryDelaysMs: [] });
    await registry.start();
    const service = new NhiService(registry);
    expect((await service.readBasic()).name).toBe('王小明');
    // Swapped faster than one status poll: pcscd shows the same ATR but two more card events.
    fake.insert(bob, 3);
    await registry.settled();
    expect((await service.readBasic()).name).toBe('陳測試');
    await registry.stop();
  });
});

/** Just enough of the pcsclite addon for the registry: one context, one reader, cards that answer. */
function fakePcsc(name: string) {
  let card: VirtualCard | undefined;
  let events = 0;
  let attached = false;
  const handle = Object.assign(new EventEmitter(), {
    name,
    SCARD_SHARE_SHARED: 2,
    SCARD_SHARE_EXCLUSIVE: 1,
    SCARD_PROTOCOL_T0: 1,
    SCARD_PROTOCOL_T1: 2,
    SCARD_STATE_PRESENT: 0x20,
    SCARD_STATE_MUTE: 0x200,
    SCARD_LEAVE_CARD: 0,
    SCARD_RESET_CARD: 1,
    connect(_options: unknown, cb: (err: unknown, protocol: number) => void) {
      setImmediate(() => cb(card ? undefined : new Error('no card (0x8010000c)'), 2));
    },
    transmit(data: Buffer, _len: number, _protocol: number, cb: (err: unknown, response: Buffer) => void) {
      if (!card) return cb(new Error('removed (0x80100069)'), Buffer.alloc(0));
      void Promise.resolve(card.process(data)).then((r) => cb(undefined, Buffer.from(r)));
    },
    disconnect(_disposition: number, cb: (err: unknown) => void) {
      setImmediate(() => cb(undefined));
    },
    close() {},
  });
  const status = () => handle.emit('status', card ? { state: 0x20 | 0x10 | (events << 16), atr: card.atr } : { state: 0x10 | (events << 16) });
  const factory = () => {
    const context = Object.assign(new EventEmitter(), {
      start(cb: (err: unknown, data: Buffer) => void) {
        setImmediate(() => cb(undefined, Buffer.alloc(0)));
      },
      close() {},
    });
    // As the addon: start() on the next tick; its callback announces the readers.
    process.nextTick(() =>
      context.start(() => {
        context.emit('reader', handle);
        attached = true;
        setImmediate(status);
      }),
    );
    return context;
  };
  return {
    factory,
    insert(next: VirtualCard, eventCount: number) {
      card = next;
      events = eventCount;
      if (attached) status();
    },
  };
}
