import { encodeResponse, hex, parseResponse } from '../../../src/pcsc/apdu.js';
import { createApduTransport } from '../../../src/pcsc/transport.js';
import { expectSuccess, statusWordError } from '../../../src/pcsc/status-words.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { CardBridgeError } from '../../../src/errors.js';

function transportTo(card: GenericTestCard) {
  return createApduTransport(async (bytes) => card.process(bytes));
}

describe('transmit with T=0 artefacts', () => {
  it('follows 61 xx with GET RESPONSE and joins every chunk', async () => {
    const data = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 7) & 0xff));
    const card = new GenericTestCard({ t0: true });
    const response = await transportTo(card).transmit({ cla: 0, ins: 0xee, p1: 0, p2: 0, data: data.subarray(0, 255), le: 256 });
    expect(response.sw).toBe(0x9000);
    expect(response.data).toEqual(data.subarray(0, 255));
    // the echo, then one GET RESPONSE (CLA 00, Le = the 61 xx count)
    expect(card.received.map((b) => b.subarray(0, 5).toString('hex'))).toEqual(['00ee0000ff', '00c00000ff']);

    const bigCard = new GenericTestCard({ t0: true, dataObject: data });
    const big = await transportTo(bigCard).transmit({ cla: 0, ins: 0xca, p1: 0, p2: 0, le: 256 });
    expect(big.data).toEqual(data);
    expect(bigCard.received.filter((b) => b[1] === 0xc0)).toHaveLength(3); // 256 + 256 + 88
  });

  it('resends once with the Le the card asks for on 6C xx', async () => {
    const card = new GenericTestCard({ t0: true, dataObject: hex('0102030405') });
    const response = await transportTo(card).transmit({ cla: 0, ins: 0xca, p1: 0, p2: 0, le: 256 });
    expect(response).toEqual({ data: hex('0102030405'), sw: 0x9000 });
    expect(card.received.map((b) => b.toString('hex'))).toEqual(['00ca000000', '00ca000005']);
  });

  it('passes a plain T=1 answer through untouched', async () => {
    const card = new GenericTestCard({ dataObject: hex('AABB') });
    const response = await transportTo(card).transmit({ cla: 0, ins: 0xca, p1: 0, p2: 0, le: 2 });
    expect(response).toEqual({ data: hex('AABB'), sw: 0x9000 });
    expect(card.received).toHaveLength(1);
  });

  it('gives up on a card that answers 61 xx forever', async () => {
    const transport = createApduTransport(async () => hex('00 61 10'));
    await expect(transport.transmit({ cla: 0, ins: 0xca, p1: 0, p2: 0, le: 16 })).rejects.toMatchObject({ code: 'ProtocolError' });
  });

  it('reports a response shorter than a status word as a protocol error', async () => {
    const transport = createApduTransport(async () => hex('90'));
    await expect(transport.transmit({ cla: 0, ins: 0xca, p1: 0, p2: 0 })).rejects.toMatchObject({ code: 'ProtocolError' });
  });

  it('keeps the final status word of a chain', async () => {
    let step = 0;
    const transport = createApduTransport(async () => (step++ === 0 ? hex('61 02') : encodeResponse({ data: hex('0102'), sw: 0x6282 })));
    expect(await transport.transmit({ cla: 0, ins: 0xb0, p1: 0, p2: 0, le: 256 })).toEqual({ data: hex('0102'), sw: 0x6282 });
  });
});

describe('status words in the error vocabulary', () => {
  it('maps 63 Cx to PinIncorrect with tries left', () => {
    const e = statusWordError(0x63c2, 'VERIFY');
    expect(e).toBeInstanceOf(CardBridgeError);
    expect(e).toMatchObject({ code: 'PinIncorrect', triesLeft: 2, sw: 0x63c2 });
  });

  it('maps 63 C0 and 69 83 to PinBlocked', () => {
    expect(statusWordError(0x63c0, 'VERIFY')).toMatchObject({ code: 'PinBlocked', triesLeft: 0 });
    expect(statusWordError(0x6983, 'VERIFY')).toMatchObject({ code: 'PinBlocked' });
  });

  it('keeps other failures as CardError with a readable meaning', () => {
    const e = statusWordError(0x6a82, 'SELECT 5030');
    expect(e).toMatchObject({ code: 'CardError', sw: 0x6a82 });
    expect(e.message).toBe('SELECT 5030 failed: 6A 82 (file or application not found)');
  });

  it('expectSuccess returns data on 90 00 and throws otherwise', () => {
    expect(expectSuccess(parseResponse(hex('01 90 00')), 'x')).toEqual(hex('01'));
    expect(() => expectSuccess(parseResponse(hex('6D 00')), 'x')).toThrow(/instruction not supported/);
  });
});
