import { hex } from '../../../src/pcsc/apdu.js';
import { SessionRedactor, TRACE_FAKE_NHI_HOLDER, fakeNhiBasicData, isPinBearing } from '../../../src/trace/redact.js';
import { patternToHex } from '../../../src/trace/trace-file.js';
import { NHI_TEST_IDENTITY_HKSCS, NHI_TEST_IDENTITY_RESIDENT, encodeNhiBasicData } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { parseNhiBasicData } from '../../../src/cards/nhi/basic-data.js';

const shown = (redactor: SessionRedactor, command: string) => patternToHex(redactor.command(hex(command)).pattern, ' ');

describe('trace redaction of PIN-bearing commands', () => {
  it('removes the PIN of a plain VERIFY and keeps the header and Lc', () => {
    const r = new SessionRedactor();
    expect(shown(r, '00 20 00 81 08 31 32 33 34 35 36 FF FF')).toBe('00 20 00 81 08 ** ** ** ** ** ** ** **');
    expect(r.command(hex('00 20 00 81 08 31 32 33 34 35 36 FF FF')).redaction).toMatch(/PIN/);
  });

  it("removes gen 1's protected VERIFY block (the spec's real-card vector: IV and cryptogram)", () => {
    const r = new SessionRedactor();
    const apdu = '8C 20 00 01 20 CA4F8C063BBBFA3E 6CDDAF7D1A588F3B0208AB5212A05444BE30EC53D0B0167C';
    expect(shown(r, apdu)).toBe(`8C 20 00 01 20 ${Array(32).fill('**').join(' ')}`);
  });

  it("removes gen 2's wrapped VERIFY (the spec's vector) and every later C-MAC of that channel", () => {
    const r = new SessionRedactor();
    expect(shown(r, '80 50 01 00 08 D405EC4CDC43CF8D 00')).toBe('80 50 01 00 08 D4 05 EC 4C DC 43 CF 8D 00');
    // EXTERNAL AUTHENTICATE comes before the PIN: nothing to hide yet.
    expect(shown(r, '84 82 03 00 10 00112233445566778899AABBCCDDEEFF')).toContain('00 11 22 33');
    expect(shown(r, '04 20 00 01 18 C5B3BE9F583A7EEDC0A311124389A497E6EB3952A40BC30D')).toBe(`04 20 00 01 18 ${Array(24).fill('**').join(' ')}`);
    // SM SELECT: its MAC is chained from the VERIFY's, so it goes; the encrypted FID stays.
    expect(shown(r, '04 A4 00 04 18 000102030405060708090A0B0C0D0E0F 1011121314151617 00')).toBe(
      '04 A4 00 04 18 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F ** ** ** ** ** ** ** ** 00',
    );
    // MAC only, no data (84 C1 00 80 with Le): the whole data field is the MAC.
    expect(shown(r, '84 C1 00 80 08 0102030405060708 80')).toBe('84 C1 00 80 08 ** ** ** ** ** ** ** ** 80');
    // A plain command in between is untouched.
    expect(shown(r, '00 A4 04 0C 10 A0000002830000062201696400010101 00')).not.toContain('**');
    // A new INITIALIZE UPDATE starts a new chain: MACs before its VERIFY are kept.
    shown(r, '80 50 01 00 08 0102030405060708 00');
    expect(shown(r, '84 82 03 00 10 00112233445566778899AABBCCDDEEFF')).not.toContain('**');
  });

  it('classifies PIN change and unblock as PIN-bearing, reads and signatures not', () => {
    expect(isPinBearing(hex('00 24 00 81 10 00'))).toBe(true);
    expect(isPinBearing(hex('00 2C 00 81 10 00'))).toBe(true);
    expect(isPinBearing(hex('80 EA 02 02 01 00'))).toBe(false);
    expect(isPinBearing(hex('00 B0 00 00 C8'))).toBe(false);
  });

  it('leaves gen 1 plain commands after a protected VERIFY alone (no chaining there)', () => {
    const r = new SessionRedactor();
    shown(r, '8C 20 00 01 20 CA4F8C063BBBFA3E 6CDDAF7D1A588F3B0208AB5212A05444BE30EC53D0B0167C');
    expect(shown(r, '80 EA 82 02 04 01020304')).toBe('80 EA 82 02 04 01 02 03 04');
  });
});

describe('trace redaction of NHI holder data', () => {
  const real = encodeNhiBasicData(NHI_TEST_IDENTITY_HKSCS);

  it('replaces every basic-data field by a same-length fake that still parses', () => {
    const r = new SessionRedactor();
    const response = Buffer.concat([real, hex('90 00')]);
    const out = r.response(hex('00 CA 11 00 02 00 00'), response);
    expect(out.response.length).toBe(response.length);
    expect(out.response.subarray(-2)).toEqual(hex('90 00'));
    expect(out.redaction).toMatch(/basic data/);
    const fake = parseNhiBasicData(out.response.subarray(0, -2));
    expect(fake).toMatchObject({ cardNumber: TRACE_FAKE_NHI_HOLDER.cardNumber, idNumber: TRACE_FAKE_NHI_HOLDER.idNumber, birthDate: '1981-01-01', sex: 'M' });
    expect(fake.name).toMatch(/^(測試)+/);
    const text = out.response.toString('latin1');
    for (const value of [NHI_TEST_IDENTITY_HKSCS.cardNumber, NHI_TEST_IDENTITY_HKSCS.idNumber, '0881231', '1090229']) expect(text).not.toContain(value);
    expect(out.response.includes(real.subarray(12, 18))).toBe(false); // the Big5 name bytes
  });

  it('keeps the name length (padding stays where it was)', () => {
    const fake = fakeNhiBasicData(real);
    const nameEnd = (b: Buffer) => 19 - [...b.subarray(12, 32)].reverse().findIndex((x) => x !== 0 && x !== 0x20);
    expect(nameEnd(fake)).toBe(nameEnd(real));
  });

  it('an ASCII name of odd length (a resident) becomes Big5 pairs and a space, still parsing', () => {
    const resident = encodeNhiBasicData(NHI_TEST_IDENTITY_RESIDENT);
    const fake = fakeNhiBasicData(resident);
    expect(fake.length).toBe(57);
    expect(fake.includes(Buffer.from('JOHN'))).toBe(false);
    expect(parseNhiBasicData(fake).name).toMatch(/^(測試)+測?$/);
  });

  it('replaces the card id and all of the card status but its first character', () => {
    const r = new SessionRedactor();
    expect(r.response(hex('00 CA 00 00 02 00 00'), Buffer.concat([Buffer.from('000033334444'), hex('90 00')])).response.toString('latin1')).toBe(
      `${TRACE_FAKE_NHI_HOLDER.cardNumber}\x90\x00`,
    );
    expect(r.response(hex('00 CA 24 00 02 00 00'), Buffer.concat([Buffer.from('1ABC'), hex('90 00')])).response.toString('latin1')).toBe('1000\x90\x00');
  });

  it('leaves error answers and other reads alone', () => {
    const r = new SessionRedactor();
    expect(r.response(hex('00 CA 11 00 02 00 00'), hex('6A 86')).response).toEqual(hex('6A 86'));
    expect(r.response(hex('80 CA 00 45 00'), hex('45 0A 01 02 90 00')).response).toEqual(hex('45 0A 01 02 90 00'));
  });
});
