import { createHash } from 'node:crypto';
import { desEcbDecrypt, tdesEcbDecrypt } from '../../../src/crypto/des.js';
import { decryptNhiEnCrypt, decryptNhiSecureBasic, unpad78 } from '../../../src/emulator/nhi/relying-site.js';
import { nhiEnCrypt, nhiSecureBasic, pad78, taipeiDate } from '../../../src/server/nhi/legacy-crypto.js';
import { H_SIGN_LENGTH, parseHSign, renderHSign } from '../../../src/server/nhi/operations.js';
import { asciiJson, decodeJsonBitmap, encodeJsonBitmap } from '../../../src/server/nhi/status-bitmap.js';

const fixed = (byte: number) => (n: number) => Buffer.alloc(n, byte);

describe('section C building blocks', () => {
  it('pad78 makes 8-byte blocks of 7 data bytes and one filler byte', () => {
    expect(pad78(Buffer.from('ABCDEFGHIJ'), fixed(0xee)).toString('hex')).toBe(`${Buffer.from('ABCDEFG').toString('hex')}ee${Buffer.from('HIJ').toString('hex')}00000000ee`);
    expect(pad78(Buffer.from('1234567'), fixed(0x11))).toHaveLength(8);
    expect(unpad78(pad78(Buffer.from('ABCDEFGHIJ'), fixed(1)))).toEqual(Buffer.concat([Buffer.from('ABCDEFGHIJ'), Buffer.alloc(4)]));
  });

  it.each([
    ['2024-03-01T15:59:59Z', '2024', '03', '01'],
    ['2024-03-01T16:00:00Z', '2024', '03', '02'],
    ['2023-12-31T16:00:00Z', '2024', '01', '01'],
    ['2024-02-28T20:00:00Z', '2024', '02', '29'],
  ])('today in Taiwan at %s is %s-%s-%s', (iso, year, month, day) => {
    expect(taipeiDate(new Date(iso))).toEqual({ year, month, day });
  });

  it('EnCrypt is the two 3DES layers of the spec, step by step', () => {
    const now = new Date('2024-05-20T01:00:00Z');
    const hex = nhiEnCrypt('abc123', Buffer.from('000011112222'), now, fixed(0x5a));
    const outer = tdesEcbDecrypt(Buffer.from('272526864181565247277656'), Buffer.from(hex, 'hex'));
    // every 8th byte is the filler
    for (let i = 7; i < outer.length; i += 8) expect(outer[i]).toBe(0x5a);
    const k1 = Buffer.concat([createHash('sha1').update('00001111222220240520').digest(), Buffer.from([0x27, 0x06, 0x58, 0x66])]);
    const c1 = unpad78(outer).subarray(0, 8);
    expect(tdesEcbDecrypt(k1, c1).toString('latin1')).toBe('abc123\x02\x02');
    expect(decryptNhiEnCrypt(hex, '000011112222', { year: 2024, month: 5, day: 20 })).toBe('abc123');
  });

  it('SecureGetBasic is single DES keyed by MMDDYYYY over pad78(Big5-HKSCS)', () => {
    const csv = '000011112222,A123456789,王小明,0740315,M,0';
    const hex = nhiSecureBasic(csv, new Date('2024-05-20T01:00:00Z'), fixed(0));
    const plain = desEcbDecrypt(Buffer.from('05202024'), Buffer.from(hex, 'hex'));
    expect(unpad78(plain).subarray(0, 13).toString('ascii')).toBe('000011112222,');
    expect(decryptNhiSecureBasic(hex, { year: 2024, month: 5, day: 20 })).toBe(csv);
  });

  it('refuses passwords outside 6–12 ASCII characters', () => {
    for (const pwd of ['12345', '1234567890123', 'pässwörd', '']) {
      expect(() => nhiEnCrypt(pwd, Buffer.from('000011112222'), new Date())).toThrow(expect.objectContaining({ code: 'PinLength' }));
    }
  });
});

describe('H_Sign rendering', () => {
  it('maps each of the 256 bytes to one character, losslessly, identity for ASCII', () => {
    const binary = Buffer.from(Array.from({ length: H_SIGN_LENGTH }, (_, i) => i));
    const rendered = renderHSign(binary);
    expect(rendered).toHaveLength(256);
    expect(parseHSign(rendered)).toEqual(binary);
    const ascii = Buffer.from('0123456789ABCDEF'.repeat(16), 'ascii');
    expect(renderHSign(ascii)).toBe('0123456789ABCDEF'.repeat(16));
    expect(() => renderHSign(Buffer.alloc(255))).toThrow();
  });
});

describe('status bitmap', () => {
  it('writes a valid 24-bit BMP whose pixels hold the JSON as B, G, R', () => {
    const value = { result: '0000', version: '0001', note: '健保' };
    const bmp = encodeJsonBitmap(value, 64);
    expect(bmp.toString('ascii', 0, 2)).toBe('BM');
    expect(bmp.readUInt32LE(2)).toBe(bmp.length);
    expect(bmp.readInt32LE(18)).toBe(64);
    expect(bmp.readInt32LE(22)).toBe(1);
    expect(bmp.readUInt16LE(28)).toBe(24);
    expect(bmp.length).toBe(54 + 64 * 3);
    const json = asciiJson(value);
    expect(json).toBe('{"result":"0000","version":"0001","note":"\\u5065\\u4fdd"}');
    // pixel 0 = bytes 0..2 stored B, G, R: a page reading fromCharCode(B, G, R) gets '{"r'
    expect(bmp.subarray(54, 57).toString('latin1')).toBe('{"r');
    expect(decodeJsonBitmap(bmp)).toEqual(value);
  });

  it('decodes the way nhiicc.host.js does (skipping zero bytes, canvas RGBA order)', () => {
    const bmp = encodeJsonBitmap({ result: '7004' });
    const width = bmp.readInt32LE(18);
    // what getImageData returns: R, G, B, A per pixel
    const rgba: number[] = [];
    for (let i = 0; i < width; i++) rgba.push(bmp[54 + i * 3 + 2]!, bmp[54 + i * 3 + 1]!, bmp[54 + i * 3]!, 255);
    let text = '';
    for (let i = 0; i < width; i++) {
      const [b0, b1, b2] = [rgba[i * 4]!, rgba[i * 4 + 1]!, rgba[i * 4 + 2]!];
      if (b2 !== 0) text += String.fromCharCode(b2);
      if (b1 !== 0) text += String.fromCharCode(b1);
      if (b0 !== 0) text += String.fromCharCode(b0);
    }
    expect(JSON.parse(text)).toEqual({ result: '7004' });
  });

  it('refuses JSON that does not fit', () => {
    expect(() => encodeJsonBitmap({ long: 'x'.repeat(1000) }, 16)).toThrow();
  });
});
