import { CardBridgeError } from '../../../src/errors.js';
import { NHI_TEST_IDENTITY_UNDECODABLE, VirtualNhiCard } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { nhiErrorCode } from '../../../src/server/nhi/error-codes.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import type { SamSession } from '../../../src/remote/nhi-sam/sam-client.js';
import { EXPECTED_TEST_BASIC_DATA, SelfRemovingCard, caught, failingCard } from './helpers.js';

const R0 = 'Reader 0';
const R1 = 'Reader 1';

async function registryWith(cards: Record<string, import('../../../src/emulator/virtual-card.js').VirtualCard>): Promise<MockReaderRegistry> {
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [] });
  registry.addReader(R0);
  registry.addReader(R1);
  for (const [reader, card] of Object.entries(cards)) await registry.insertCard(reader, card);
  return registry;
}

describe('NhiService.readBasic', () => {
  it('reads the basic data and the termination flag through the registry', async () => {
    const registry = await registryWith({ [R1]: new VirtualNhiCard({ t0: true, terminationFlag: '1' }) });
    const info = await new NhiService(registry).readBasic();
    expect(info).toEqual({
      ...EXPECTED_TEST_BASIC_DATA,
      cardTermination: '1',
      reader: R1,
    });
  });

  it('finds the NHI card among other cards, or reads the reader asked for', async () => {
    const registry = await registryWith({ [R0]: new GenericTestCard(), [R1]: new VirtualNhiCard({ identity: NHI_TEST_IDENTITY_UNDECODABLE }) });
    const service = new NhiService(registry);
    expect((await service.readBasic()).reader).toBe(R1);
    const error = await caught<CardBridgeError>(service.readBasic({ reader: R0 }));
    expect(error).toMatchObject({ code: 'WrongCard' });
    expect(nhiErrorCode(error, 'GetBasic')).toBe('7004');
    const named = await service.readBasic({ reader: R1 });
    expect(named).toMatchObject({ name: '林\uFFFD華', nameComplete: false });
  });

  it('reads 2025+ cards that refuse SELECT (recognised through the card-id probe)', async () => {
    const registry = await registryWith({ [R0]: new VirtualNhiCard({ selectUnsupported: true }) });
    expect(registry.readers()[0]!.card?.type.kind).toBe('nhi');
    expect((await new NhiService(registry).readBasic()).cardNumber).toBe('000011112222');
  });

  it('tolerates a card that refuses the status read', async () => {
    const card = failingCard(new VirtualNhiCard(), (c) => (c[1] === 0xca && c[2] === 0x24 ? 0x6a88 : undefined));
    const registry = await registryWith({ [R0]: card });
    expect((await new NhiService(registry).readBasic()).cardTermination).toBeNull();
  });

  it('says no card / no reader / staff card with the right codes', async () => {
    const empty = await registryWith({});
    const noCard = await caught<CardBridgeError>(new NhiService(empty).readBasic());
    expect(noCard.code).toBe('NoCard');
    expect(nhiErrorCode(noCard, 'GetBasic')).toBe('7004');
    const noReader = await caught<CardBridgeError>(new NhiService(empty).readBasic({ reader: 'nope' }));
    expect(noReader.code).toBe('NoReader');
    expect(nhiErrorCode(noReader, 'GetBasic')).toBe('7002');

    const staff = await registryWith({ [R0]: new VirtualNhiCard({ staffCard: true }) });
    const error = await caught<CardBridgeError>(new NhiService(staff).readBasic());
    expect(error.code).toBe('UnsupportedCard');
    expect(nhiErrorCode(error, 'GetBasic')).toBe('8010');
  });

  it('gives 8010 when the card refuses the read and 8011 for garbage', async () => {
    const refusing = await registryWith({ [R0]: failingCard(new VirtualNhiCard(), (c) => (c[2] === 0x11 ? 0x6f00 : undefined)) });
    const refused = await caught<CardBridgeError>(new NhiService(refusing).readBasic());
    expect(refused).toMatchObject({ code: 'CardError', stage: 'basic-data', sw: 0x6f00 });
    expect(nhiErrorCode(refused, 'GetBasic')).toBe('8010');

    const garbage = await registryWith({ [R0]: new VirtualNhiCard({ basicDataOverride: Buffer.alloc(57, 0x3f) }) });
    const bad = await caught<CardBridgeError>(new NhiService(garbage).readBasic());
    expect(bad).toMatchObject({ code: 'ProtocolError', stage: 'basic-data' });
    expect(nhiErrorCode(bad, 'GetBasic')).toBe('8011');
  });

  it.each([1, 2, 3])('reports CardRemoved when the card leaves at APDU %i of the read', async (nth) => {
    const registry = new MockReaderRegistry();
    registry.addReader(R0);
    const card = new SelfRemovingCard(new VirtualNhiCard({ t0: true }), registry, R0);
    await registry.insertCard(R0, card);
    card.arm(nth);
    const error = await caught<CardBridgeError>(new NhiService(registry).readBasic());
    expect(error).toBeInstanceOf(CardBridgeError);
    expect(error.code).toBe('CardRemoved');
    expect(nhiErrorCode(error, 'GetBasic')).toBe('7004');
    expect(registry.readers()[0]!.card).toBeUndefined();
  });
});

describe('NhiService.getRandom', () => {
  it('gives 16 decimal digits, different each time, every digit used', () => {
    const service = new NhiService(new MockReaderRegistry());
    const randoms = Array.from({ length: 200 }, () => service.getRandom());
    for (const r of randoms) expect(r).toMatch(/^\d{16}$/);
    expect(new Set(randoms).size).toBe(200);
    const digits = new Set(randoms.join(''));
    expect(digits.size).toBe(10);
  });
});

describe('NhiService.hSign input', () => {
  it.each(['', '0001123', '00011234567890123456x', '000212345678901234567'.slice(0, 20), '0001123456789012345a', '00011234567890123456 ', ' 0001123456789012345'])(
    'refuses %j with InvalidInput before touching the SAM',
    async (input) => {
      let opened = 0;
      const openSam = async (): Promise<SamSession> => {
        opened++;
        throw new Error('must not be called');
      };
      const registry = await registryWith({ [R0]: new VirtualNhiCard() });
      const error = await caught<CardBridgeError>(new NhiService(registry, { openSam }).hSign(input));
      expect(error.code).toBe('InvalidInput');
      expect(nhiErrorCode(error, 'H_Sign')).toBe('9999');
      expect(opened).toBe(0);
    },
  );
});
