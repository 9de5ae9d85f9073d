import iconv from 'iconv-lite';
import { decodeBig5Name, isoDateToRoc, maskIdNumber, parseNhiBasicData, rocDateToIso } from '../../../src/cards/nhi/basic-data.js';
import { CardBridgeError } from '../../../src/errors.js';
import {
  NHI_TEST_IDENTITY,
  NHI_TEST_IDENTITY_HKSCS,
  NHI_TEST_IDENTITY_RESIDENT,
  NHI_TEST_IDENTITY_UNDECODABLE,
  encodeNhiBasicData,
} from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { EXPECTED_TEST_BASIC_DATA } from './helpers.js';

function record(): Buffer {
  return encodeNhiBasicData(NHI_TEST_IDENTITY);
}

function expectProtocolError(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(CardBridgeError);
  expect((thrown as CardBridgeError).code).toBe('ProtocolError');
  expect((thrown as CardBridgeError).stage).toBe('basic-data');
  expect((thrown as CardBridgeError).message).toMatch(pattern);
}

describe('NHI basic data record (57 bytes)', () => {
  it('parses every field at its documented offset', () => {
    // Hand-built, independent of the emulator's encoder.
    const bytes = Buffer.concat([
      Buffer.from('000011112222', 'ascii'),
      Buffer.concat([Buffer.from('a4fda470a9fa', 'hex'), Buffer.alloc(14)]), // 王小明 in Big5
      Buffer.from('A123456789', 'ascii'),
      Buffer.from('0740315', 'ascii'),
      Buffer.from('M', 'ascii'),
      Buffer.from('1040601', 'ascii'),
    ]);
    expect(bytes.length).toBe(57);
    expect(parseNhiBasicData(bytes)).toEqual(EXPECTED_TEST_BASIC_DATA);
  });

  it('does not use the wrong offsets of the snippet circulating online', () => {
    const parsed = parseNhiBasicData(record());
    // [12:18] would cut the name at 6 bytes and [43:49] would shift the birthday by one.
    expect(parsed.birthDateRoc).toBe(record().subarray(42, 49).toString('ascii'));
    expect(parsed.birthDateRoc).not.toBe(record().subarray(43, 49).toString('ascii'));
  });

  it('round-trips the emulator fixtures', () => {
    const hk = parseNhiBasicData(encodeNhiBasicData(NHI_TEST_IDENTITY_HKSCS));
    expect(hk).toMatchObject({ name: '陳𨭆邨', nameComplete: true, sex: 'F', birthDate: '1999-12-31', birthDateRoc: '0881231', issueDate: '2020-02-29' });
    const resident = parseNhiBasicData(encodeNhiBasicData(NHI_TEST_IDENTITY_RESIDENT));
    expect(resident).toMatchObject({ name: 'TEST JOHN DOE', idNumber: 'A800000014', nameComplete: true });
  });

  it('rejects records of the wrong length', () => {
    expectProtocolError(() => parseNhiBasicData(record().subarray(0, 56)), /expected 57 bytes, got 56/);
    expectProtocolError(() => parseNhiBasicData(Buffer.concat([record(), Buffer.from([0])])), /got 58/);
    expectProtocolError(() => parseNhiBasicData(Buffer.alloc(0)), /got 0/);
  });

  it.each([
    ['card number with a letter', 0, 'X', /card number/],
    ['card number with a NUL', 5, '\u0000', /cardNumber field holds non-ASCII/],
    ['ID without its letter', 32, '1', /ID number/],
    ['ID with a lowercase letter', 32, 'a', /ID number/],
    ['ID with a non-digit', 40, 'Z', /ID number/],
    ['birth month 13', 45, '13', /birth date/],
    ['birth day 32', 47, '32', /birth date/],
    ['birth date of ROC year 0', 42, '000', /birth date/],
    ['birth date with a space', 48, ' ', /birth date/],
    ['sex X', 49, 'X', /sex/],
    ['issue date Feb 30', 53, '0230', /issue date/],
    ['issue date 29 Feb of a common year (ROC 103 = 2014)', 50, '1030229', /issue date/],
  ])('rejects garbage: %s', (_label, offset, text, pattern) => {
    const bytes = record();
    bytes.write(text as string, offset as number, 'latin1');
    expectProtocolError(() => parseNhiBasicData(bytes), pattern as RegExp);
  });

  it('accepts 29 Feb of a leap year (ROC 109 = 2020)', () => {
    const bytes = record();
    bytes.write('1090229', 50, 'ascii');
    expect(parseNhiBasicData(bytes).issueDate).toBe('2020-02-29');
  });

  it('rejects an empty name', () => {
    const bytes = record();
    bytes.fill(0, 12, 32);
    expectProtocolError(() => parseNhiBasicData(bytes), /name is empty/);
  });

  it('masks the ID for display', () => {
    expect(maskIdNumber('A123456789')).toBe('A12345****');
    expect(maskIdNumber('AB')).toBe('**');
  });
});

describe('ROC dates', () => {
  it.each([
    ['0740315', '1985-03-15'],
    ['0010101', '1912-01-01'],
    ['1131231', '2024-12-31'],
    ['0890229', '2000-02-29'],
  ])('%s ↔ %s', (roc, iso) => {
    expect(rocDateToIso(roc)).toBe(iso);
    expect(isoDateToRoc(iso)).toBe(roc);
  });

  it.each(['0000101', '074031', '07403155', '0741301', '0740230', '0890230', 'abcdefg', '1000229'])('rejects %s', (roc) => {
    expect(rocDateToIso(roc)).toBeUndefined();
  });

  it('refuses Gregorian dates outside the ROC era', () => {
    expect(isoDateToRoc('1911-12-31')).toBeUndefined();
    expect(isoDateToRoc('2911-01-01')).toBeUndefined();
    expect(isoDateToRoc('2023-02-29')).toBeUndefined();
  });
});

describe('Big5-HKSCS names', () => {
  const big5 = (s: string) => iconv.encode(s, 'big5hkscs');

  it('decodes plain Big5 padded with zeros or spaces', () => {
    expect(decodeBig5Name(Buffer.concat([big5('陳大文'), Buffer.alloc(14)]))).toEqual({ text: '陳大文', complete: true });
    expect(decodeBig5Name(Buffer.concat([big5('陳大文'), Buffer.from('              ')]))).toEqual({ text: '陳大文', complete: true });
  });

  it('decodes HKSCS characters, in and outside the BMP', () => {
    // 邨 = 90 68 and 𨭆 (U+28B46) = 9D 53: both exist only in the HKSCS extension.
    const bytes = Buffer.from('b3af9d539068', 'hex');
    expect(decodeBig5Name(bytes)).toEqual({ text: '陳𨭆邨', complete: true });
  });

  it('turns a user-defined-area character into one U+FFFD and keeps its neighbours', () => {
    const bytes = Buffer.concat([big5('林'), Buffer.from([0x81, 0x40]), big5('華')]);
    expect(decodeBig5Name(bytes)).toEqual({ text: '林\uFFFD華', complete: false });
  });

  it('handles a lead byte with an invalid trail byte without eating the next character', () => {
    const bytes = Buffer.concat([big5('王'), Buffer.from([0xa4]), Buffer.from('A'), big5('明')]);
    // A4 41 is a valid pair in Big5 (trail 40–7E), so use an impossible trail 0x7F instead.
    bytes[bytes.indexOf(0x41)] = 0x7f;
    const decoded = decodeBig5Name(bytes);
    expect(decoded.complete).toBe(false);
    expect([...decoded.text]).toEqual(['王', '\uFFFD', '\uFFFD', '明']);
  });

  it('handles a truncated double-byte character at the end of the field', () => {
    const bytes = Buffer.concat([Buffer.from('a4fd'.repeat(9), 'hex'), Buffer.from([0xa4, 0x70])]);
    expect(decodeBig5Name(bytes)).toEqual({ text: '王'.repeat(9) + '小', complete: true });
    const cut = Buffer.concat([Buffer.from('a4fd'.repeat(9), 'hex'), Buffer.from([0x20, 0xa4])]);
    expect(decodeBig5Name(cut)).toEqual({ text: '王'.repeat(9) + ' \uFFFD', complete: false });
  });

  it('stops at the first 00 and ignores what follows', () => {
    const bytes = Buffer.concat([big5('王小明'), Buffer.from([0]), Buffer.from('garbage')]);
    expect(decodeBig5Name(bytes)).toEqual({ text: '王小明', complete: true });
  });

  it('trims ideographic spaces (Big5 A1 40)', () => {
    expect(decodeBig5Name(Buffer.concat([Buffer.from('a140', 'hex'), big5('王小明'), Buffer.from('a140a140', 'hex')]))).toEqual({
      text: '王小明',
      complete: true,
    });
  });

  it('treats bytes 80 and FF and control characters as undecodable', () => {
    expect(decodeBig5Name(Buffer.from([0x41, 0x80, 0x42, 0xff, 0x43, 0x07]))).toEqual({ text: 'A\uFFFDB\uFFFDC\uFFFD', complete: false });
  });

  it('reports the fixture with an undecodable sequence as incomplete', () => {
    const parsed = parseNhiBasicData(encodeNhiBasicData(NHI_TEST_IDENTITY_UNDECODABLE));
    expect(parsed.name).toBe('林\uFFFD華');
    expect(parsed.nameComplete).toBe(false);
  });
});
