import { NhiCard } from '../../../src/cards/nhi/nhi-card.js';
import { CardBridgeError } from '../../../src/errors.js';
import { nhiTestCardKey, nhiTestSamAuthData, nhiTestVerifyCardReply } from '../../../src/emulator/nhi/test-auth.js';
import {
  NHI_TEST_IDENTITY_HKSCS,
  NHI_TEST_IDENTITY_UNDECODABLE,
  VirtualNhiCard,
  type VirtualNhiCardOptions,
  encodeNhiBasicData,
} from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { createApduTransport } from '../../../src/pcsc/transport.js';
import { EXPECTED_TEST_BASIC_DATA } from './helpers.js';

function driverFor(card: VirtualCard): NhiCard {
  return new NhiCard(createApduTransport(async (command) => Buffer.from(await card.process(command))));
}

function sent(card: VirtualNhiCard | GenericTestCard): string[] {
  return card.received.map((b) => b.toString('hex').toUpperCase());
}

async function caught(promise: Promise<unknown>): Promise<CardBridgeError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(CardBridgeError);
    return e as CardBridgeError;
  }
  throw new Error('expected a CardBridgeError');
}

const SELECT = '00A4040010D1580000010000000000000000001100';
const READ_BASIC = '00CA11000200' + '00';
const READ_ID = '00CA0000020000';
const READ_STATUS = '00CA2400020000';
const GET_CHALLENGE = '0084000008';

describe('NhiCard driver', () => {
  it('reads the basic data with byte-exact APDUs (T=1)', async () => {
    const card = new VirtualNhiCard();
    const basic = await driverFor(card).readBasic();
    expect(basic).toEqual(EXPECTED_TEST_BASIC_DATA);
    expect(sent(card)).toEqual([SELECT, READ_BASIC]);
  });

  it('follows T=0 chains (61 xx → GET RESPONSE) for every read', async () => {
    const card = new VirtualNhiCard({ t0: true, identity: NHI_TEST_IDENTITY_HKSCS, terminationFlag: 'Y' });
    const driver = driverFor(card);
    expect((await driver.readBasic()).name).toBe('陳𨭆邨');
    expect((await driver.readCardId()).toString('ascii')).toBe('000033334444');
    expect(await driver.readTerminationFlag()).toBe('Y');
    expect(sent(card)).toEqual([SELECT, READ_BASIC, '00C0000039', READ_ID, '00C000000C', READ_STATUS, '00C0000008']);
  });

  it('reads card id, status flag and a fresh challenge', async () => {
    let n = 0;
    const card = new VirtualNhiCard({ random: (len) => Buffer.alloc(len, ++n) });
    const driver = driverFor(card);
    expect(await driver.readCardId()).toEqual(Buffer.from('000011112222', 'ascii'));
    expect(await driver.readTerminationFlag()).toBe('0');
    expect(await driver.getChallenge()).toEqual(Buffer.alloc(8, 1));
    expect(await driver.getChallenge()).toEqual(Buffer.alloc(8, 2));
    expect(sent(card)).toEqual([SELECT, READ_ID, READ_STATUS, GET_CHALLENGE, GET_CHALLENGE]);
  });

  it('selects only once per session', async () => {
    const card = new VirtualNhiCard();
    const driver = driverFor(card);
    await driver.readBasic();
    await driver.readBasic();
    expect(sent(card).filter((a) => a === SELECT)).toHaveLength(1);
  });

  it('carries on after a SELECT answered 6D 00 (2025+ cards)', async () => {
    const card = new VirtualNhiCard({ selectUnsupported: true });
    const driver = driverFor(card);
    expect(await driver.select()).toBe(false);
    expect((await driver.readBasic()).idNumber).toBe('A123456789');
  });

  it('performs the mutual authentication: 00 82 11 12 20 ‖ 32 bytes ‖ 10', async () => {
    const card = new VirtualNhiCard({ t0: true, random: (len) => Buffer.alloc(len, 0x42) });
    const driver = driverFor(card);
    const challenge = await driver.getChallenge();
    const key = nhiTestCardKey(card.cardId);
    const samRandom = Buffer.alloc(16, 7);
    const samData = nhiTestSamAuthData(key, challenge, samRandom);
    const reply = await driver.mutualAuthenticate(samData);
    expect(reply).toHaveLength(16);
    expect(nhiTestVerifyCardReply(key, challenge, samRandom, reply)).toBe(true);
    const apdu = card.received.find((b) => b[1] === 0x82)!;
    expect(apdu).toHaveLength(0x26);
    expect(apdu.subarray(0, 5).toString('hex')).toBe('0082111220');
    expect(apdu.subarray(5, 37)).toEqual(samData);
    expect(apdu[37]).toBe(0x10);
    expect(sent(card).at(-1)).toBe('00C0000010');
  });

  it('reports a card that refuses the SAM data as a mutual-auth CardError', async () => {
    const card = new VirtualNhiCard();
    const driver = driverFor(card);
    const challenge = await driver.getChallenge();
    const wrongKey = nhiTestCardKey(Buffer.from('999999999999'));
    const error = await caught(driver.mutualAuthenticate(nhiTestSamAuthData(wrongKey, challenge, Buffer.alloc(16))));
    expect(error).toMatchObject({ code: 'CardError', sw: 0x6300, stage: 'mutual-auth' });
    // Without a challenge first the card refuses with 69 85.
    expect(await caught(driver.mutualAuthenticate(Buffer.alloc(32)))).toMatchObject({ code: 'CardError', sw: 0x6985, stage: 'mutual-auth' });
  });

  it('refuses SAM data of the wrong size before sending anything', async () => {
    const card = new VirtualNhiCard();
    const error = await caught(driverFor(card).mutualAuthenticate(Buffer.alloc(31)));
    expect(error).toMatchObject({ code: 'InvalidInput', stage: 'mutual-auth' });
    expect(card.received).toHaveLength(0);
  });

  it('names a medical-staff card (6A 86) as UnsupportedCard', async () => {
    const error = await caught(driverFor(new VirtualNhiCard({ staffCard: true })).readBasic());
    expect(error).toMatchObject({ code: 'UnsupportedCard', sw: 0x6a86, stage: 'basic-data' });
    expect(error.message).toMatch(/not a citizen health insurance card/);
  });

  it('names a card that is not an NHI card as WrongCard', async () => {
    // The generic card refuses the SELECT and answers GET DATA with no data at all.
    expect(await caught(driverFor(new GenericTestCard()).readBasic())).toMatchObject({ code: 'WrongCard' });
    expect(await caught(driverFor(new GenericTestCard({ dataObject: Buffer.alloc(0) })).readCardId())).toMatchObject({ code: 'WrongCard' });
    // On a card that did select, a short card id is garbage, not a wrong card.
    const shortId = new VirtualNhiCard({ cardId: Buffer.from('000011112222') });
    const inner = shortId.process.bind(shortId);
    shortId.process = (c) => (c[1] === 0xca && c[2] === 0 ? Buffer.from('3030309000', 'hex') : inner(c));
    expect(await caught(driverFor(shortId).readCardId())).toMatchObject({ code: 'ProtocolError', stage: 'card-id' });
  });

  it('gives ProtocolError for a garbage record on a card that selected fine', async () => {
    const garbage = encodeNhiBasicData(NHI_TEST_IDENTITY_UNDECODABLE);
    garbage.write('ZZZZ', 42, 'ascii');
    const error = await caught(driverFor(new VirtualNhiCard({ basicDataOverride: garbage })).readBasic());
    expect(error).toMatchObject({ code: 'ProtocolError', stage: 'basic-data' });
    const short = await caught(driverFor(new VirtualNhiCard({ basicDataOverride: Buffer.alloc(20, 0x30) })).readBasic());
    expect(short).toMatchObject({ code: 'ProtocolError', stage: 'basic-data' });
  });

  it('tags failing status words with the stage that failed', async () => {
    const inner = new VirtualNhiCard();
    const failing: VirtualCard = {
      atr: inner.atr,
      process: (command) => (command[1] === 0x84 ? Buffer.from('6F00', 'hex') : command[2] === 0x00 && command[1] === 0xca ? Buffer.from('6A82', 'hex') : inner.process(command)),
    };
    const driver = driverFor(failing);
    expect(await caught(driver.getChallenge())).toMatchObject({ code: 'CardError', sw: 0x6f00, stage: 'challenge' });
    expect(await caught(driver.readCardId())).toMatchObject({ code: 'CardError', sw: 0x6a82, stage: 'card-id' });
  });

  it('tags transport failures with the stage too', async () => {
    const driver = new NhiCard({
      transmit: async (command) => {
        if (command.ins === 0xa4) return { data: Buffer.alloc(0), sw: 0x9000 };
        throw new CardBridgeError('TransportError', 'reader unplugged');
      },
    });
    expect(await caught(driver.readBasic())).toMatchObject({ code: 'TransportError', stage: 'basic-data', message: 'reader unplugged' });
  });
});

describe('VirtualNhiCard', () => {
  const opts: VirtualNhiCardOptions = {};
  it('answers probes of other applications as a real NHI card would', async () => {
    const card = new VirtualNhiCard(opts);
    expect(card.process(Buffer.from('00A4040C10A000000283000006220169640001010100', 'hex')).toString('hex')).toBe('6a82');
    expect(card.process(Buffer.from('80A40000023F00', 'hex')).toString('hex')).toBe('6e00');
    expect(card.process(Buffer.from('00A4040010D1580000010000000000000000003100', 'hex')).toString('hex')).toBe('9000');
    expect(card.process(Buffer.from('0084000010', 'hex')).toString('hex')).toBe('6700');
    expect(new VirtualNhiCard({ t0: true }).process(Buffer.from('0084000010', 'hex')).toString('hex')).toBe('6c08');
  });

  it('refuses identities that do not fit the card', () => {
    expect(() => new VirtualNhiCard({ identity: { ...NHI_TEST_IDENTITY_HKSCS, name: '王'.repeat(11) } })).toThrow(/room for 20/);
    expect(() => new VirtualNhiCard({ identity: { ...NHI_TEST_IDENTITY_HKSCS, name: '王🙂' } })).toThrow(/Big5-HKSCS/);
    expect(() => new VirtualNhiCard({ identity: { ...NHI_TEST_IDENTITY_HKSCS, birthDate: '1900-01-01' } })).toThrow(/dates/);
  });

  it('forgets its challenge on reset', () => {
    const card = new VirtualNhiCard();
    card.process(Buffer.from('0084000008', 'hex'));
    card.reset();
    const answer = card.process(Buffer.concat([Buffer.from('0082111220', 'hex'), Buffer.alloc(32), Buffer.from('10', 'hex')]));
    expect(answer.toString('hex')).toBe('6985');
    expect(card.resets).toBe(1);
  });
});
