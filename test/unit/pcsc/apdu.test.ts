import { type CommandApdu, decodeCommand, encodeCommand, hex, parseResponse, swHex } from '../../../src/pcsc/apdu.js';
import { isCardBridgeError } from '../../../src/errors.js';

const bytes = (n: number, start = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));

describe('command APDU encoding', () => {
  it('case 1: header only', () => {
    expect(encodeCommand({ cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00 })).toEqual(hex('00 A4 04 00'));
  });

  it('case 2 short: Le, with 256 written as 00', () => {
    expect(encodeCommand({ cla: 0x00, ins: 0x84, p1: 0, p2: 0, le: 8 })).toEqual(hex('00 84 00 00 08'));
    expect(encodeCommand({ cla: 0x00, ins: 0xb0, p1: 0, p2: 0, le: 256 })).toEqual(hex('00 B0 00 00 00'));
  });

  it('case 3 short: Lc and data', () => {
    expect(encodeCommand({ cla: 0x80, ins: 0xa4, p1: 0, p2: 0, data: hex('3F 00') })).toEqual(hex('80 A4 00 00 02 3F 00'));
  });

  it('case 4 short: Lc, data and Le', () => {
    expect(encodeCommand({ cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x04, data: hex('50 30'), le: 256 })).toEqual(hex('00 A4 00 04 02 50 30 00'));
  });

  it('case 2 extended: 00 then two Le bytes, 65536 written as 00 00', () => {
    expect(encodeCommand({ cla: 0, ins: 0xb0, p1: 0, p2: 0, le: 257 })).toEqual(hex('00 B0 00 00 00 01 01'));
    expect(encodeCommand({ cla: 0, ins: 0xb0, p1: 0, p2: 0, le: 65536 })).toEqual(hex('00 B0 00 00 00 00 00'));
  });

  it('case 3 extended: 00, two Lc bytes, data', () => {
    const data = bytes(300);
    const encoded = encodeCommand({ cla: 0, ins: 0xd6, p1: 0, p2: 0, data });
    expect(encoded.subarray(0, 7)).toEqual(hex('00 D6 00 00 00 01 2C'));
    expect(encoded.subarray(7)).toEqual(data);
    expect(encoded.length).toBe(307);
  });

  it('case 4 extended: Le has two bytes and no leading 00 of its own', () => {
    const encoded = encodeCommand({ cla: 0, ins: 0x2a, p1: 0x9e, p2: 0x9a, data: bytes(256), le: 65536 });
    expect(encoded.subarray(0, 7)).toEqual(hex('00 2A 9E 9A 00 01 00'));
    expect(encoded.subarray(-2)).toEqual(hex('00 00'));
    expect(encoded.length).toBe(4 + 3 + 256 + 2);
  });

  it('uses the extended form when asked even for small sizes', () => {
    expect(encodeCommand({ cla: 0, ins: 0xca, p1: 0, p2: 0, le: 16, extended: true })).toEqual(hex('00 CA 00 00 00 00 10'));
  });

  it.each([
    [{ cla: 256, ins: 0, p1: 0, p2: 0 }, /CLA/],
    [{ cla: 0, ins: -1, p1: 0, p2: 0 }, /INS/],
    [{ cla: 0, ins: 0, p1: 1.5, p2: 0 }, /P1/],
    [{ cla: 0, ins: 0, p1: 0, p2: 0, le: 0 }, /Le/],
    [{ cla: 0, ins: 0, p1: 0, p2: 0, le: 65537 }, /Le/],
    [{ cla: 0, ins: 0, p1: 0, p2: 0, data: Buffer.alloc(65536) }, /too long/],
  ])('rejects %j', (command, message) => {
    expect(() => encodeCommand(command)).toThrow(message);
    try {
      encodeCommand(command);
    } catch (e) {
      expect(isCardBridgeError(e, 'InvalidInput')).toBe(true);
    }
  });
});

describe('command APDU decoding', () => {
  it.each([
    ['case 1', { cla: 0, ins: 0xa4, p1: 4, p2: 0 }],
    ['case 2S', { cla: 0, ins: 0x84, p1: 0, p2: 0, le: 8 }],
    ['case 2S Le 256', { cla: 0, ins: 0xb0, p1: 0, p2: 0, le: 256 }],
    ['case 3S', { cla: 0x80, ins: 0xa4, p1: 0, p2: 0, data: hex('3F00') }],
    ['case 4S', { cla: 0, ins: 0xa4, p1: 0, p2: 4, data: hex('5030'), le: 256 }],
    ['case 2E', { cla: 0, ins: 0xb0, p1: 0, p2: 0, le: 1000, extended: true }],
    ['case 3E', { cla: 0, ins: 0xd6, p1: 0, p2: 0, data: bytes(600), extended: true }],
    ['case 4E', { cla: 0, ins: 0x2a, p1: 0x80, p2: 0x86, data: bytes(257), le: 65536, extended: true }],
  ] as [string, CommandApdu][])('round-trips %s', (_name, command) => {
    const decoded = decodeCommand(encodeCommand(command));
    expect(decoded.cla).toBe(command.cla);
    expect(decoded.ins).toBe(command.ins);
    expect(decoded.le).toBe(command.le);
    expect(Buffer.from(decoded.data ?? [])).toEqual(Buffer.from(command.data ?? []));
  });

  it.each([
    ['too short', '00 A4 04'],
    ['Lc larger than the body', '00 A4 04 00 05 01 02'],
    ['Lc smaller than the body', '00 A4 04 00 01 01 02 03'],
    ['truncated extended length', '00 B0 00 00 00 01'],
    ['extended Lc of zero', '00 B0 00 00 00 00 00 01'],
    ['extended Lc mismatch', '00 D6 00 00 00 00 05 01 02'],
  ])('rejects %s', (_name, input) => {
    expect(() => decodeCommand(hex(input))).toThrow(/Invalid APDU/);
  });
});

describe('response APDU', () => {
  it('splits data and status word', () => {
    const r = parseResponse(hex('01 02 03 90 00'));
    expect(r.data).toEqual(hex('01 02 03'));
    expect(r.sw).toBe(0x9000);
    expect(swHex(0x63c2)).toBe('63 C2');
  });

  it('rejects a response without a status word', () => {
    expect(() => parseResponse(hex('90'))).toThrow(/no status word/);
  });

  it('hex() rejects odd or non-hex input', () => {
    expect(() => hex('0')).toThrow();
    expect(() => hex('zz')).toThrow();
  });
});
