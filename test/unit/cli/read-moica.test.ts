import { main } from '../../../src/cli/main.js';
import { moicaJson } from '../../../src/cli/commands/read.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { captureIO } from '../../helpers/capture-io.js';
import { setup } from '../moica/helpers.js';

const iso = (d: Date) => d.toISOString().replace(/\.000Z$/, 'Z');

describe('cardbridge read moica', () => {
  it('prints the card and its certificates as a readable summary', async () => {
    const pki = await getTestPki();
    const io = captureIO();
    expect(await main(['read', 'moica', '--mock'], io)).toBe(0);
    const text = io.stdout.join('\n');
    expect(io.stdout[0]).toBe('Citizen certificate card (自然人憑證) in Mock Reader 1');
    expect(text).toMatch(/Serial number\s+TP03000012345678$/m);
    expect(text).toMatch(/Generation\s+2 /m);
    expect(text).toMatch(/Version\s+CHT V5\.2$/m);
    expect(text).toMatch(/^ {2}Holder\s+測試一 {2}\(ID ends in 6789\)$/m);
    expect(text).toContain('Certificates (4):');
    expect(text).toMatch(/^ {2}SIGN: signature certificate \(sign\), private key on the card$/m);
    expect(text).toMatch(/^ {2}KEYX: encryption certificate \(encrypt\), private key on the card$/m);
    expect(text).toMatch(/^ {2}CACert: CA certificate \(ca\)$/m);
    expect(text).toMatch(/^ {2}ROOTCACert: CA certificate \(ca\)$/m);
    expect(text).toMatch(/Issuer\s+C=TW, O=cardbridge TEST, OU=TEST 內政部憑證管理中心 \(NOT REAL\)/);
    expect(text).toContain(`Valid      ${iso(pki.sign.certificate.notBefore.value)} to ${iso(pki.sign.certificate.notAfter.value)}  (valid)`);
    expect(text).toMatch(/Key usage\s+digitalSignature, nonRepudiation$/m);
    expect(text).toMatch(/Key usage\s+keyEncipherment, dataEncipherment$/m);
    expect(text).toMatch(/Key usage\s+keyCertSign, cRLSign$/m);
    expect(io.stderr).toEqual([]);
  });

  it('--json prints serial, generation, version and every certificate', async () => {
    const pki = await getTestPki();
    const io = captureIO();
    expect(await main(['read', 'moica', '--mock', '--json', '--reader', 'Mock Reader 1'], io)).toBe(0);
    const parsed = JSON.parse(io.stdout.join('\n')) as ReturnType<typeof moicaJson>;
    expect(parsed).toMatchObject({
      card: 'moica',
      reader: 'Mock Reader 1',
      serialNumber: 'TP03000012345678',
      generation: 2,
      version: 'CHT V5.2',
      holderName: '測試一',
      idLastFour: '6789',
    });
    expect(parsed.certificates.map((c) => [c.id, c.role])).toEqual([
      ['SIGN', 'sign'],
      ['KEYX', 'encrypt'],
      ['CACert', 'ca'],
      ['ROOTCACert', 'ca'],
    ]);
    expect(parsed.certificates[0]).toEqual({
      id: 'SIGN',
      label: 'Signature certificate',
      role: 'sign',
      holderName: '測試一',
      idLastFour: '6789',
      subject: 'C=TW, CN=測試一, serialNumber=9900000000001234',
      issuer: 'C=TW, O=cardbridge TEST, OU=TEST 內政部憑證管理中心 (NOT REAL)',
      serialNumber: '7E571001',
      notBefore: iso(pki.sign.certificate.notBefore.value),
      notAfter: iso(pki.sign.certificate.notAfter.value),
      expired: false,
      notYetValid: false,
      keyUsage: ['digitalSignature', 'nonRepudiation'],
      privateKeyOnCard: true,
      publicKeyChecked: true,
      sha256: expect.stringMatching(/^[0-9A-F]{64}$/),
    });
    expect(parsed.certificates[2]).toMatchObject({ holderName: null, idLastFour: null, privateKeyOnCard: false, keyUsage: ['keyCertSign', 'cRLSign'] });
  });

  it('flags expired and not-yet-valid certificates', async () => {
    const { registry } = await setup(1);
    const service = new MoicaService(registry);
    const card = await service.cardInfo();
    const certificates = await service.listCertificates();
    const sign = certificates.find((c) => c.id === 'SIGN')!;
    const later = new Date(sign.facts.notAfter.getTime() + 1000);
    const json = moicaJson(card, certificates, later);
    expect(json).toMatchObject({ generation: 1, version: 'CHT V32N', reader: 'Test Reader' });
    expect(json.certificates.find((c) => c.id === 'SIGN')).toMatchObject({ expired: true, notYetValid: false });
    // the root CA lives longer than the holder's certificates
    expect(json.certificates.find((c) => c.id === 'ROOTCACert')).toMatchObject({ expired: false });
    const earlier = moicaJson(card, certificates, new Date(sign.facts.notBefore.getTime() - 1000));
    expect(earlier.certificates.every((c) => c.notYetValid && !c.expired)).toBe(true);
  });

  it('fails with the vocabulary code for a reader without a MOICA card, and refuses --reveal', async () => {
    const io = captureIO();
    expect(await main(['read', 'moica', '--mock', '--reader', 'Mock Reader 0'], io)).toBe(1);
    expect(io.stderr[0]).toMatch(/\[WrongCard\]$/);
    expect(io.stdout).toEqual([]);
    const reveal = captureIO();
    expect(await main(['read', 'moica', '--mock', '--reveal'], reveal)).toBe(2);
    expect(reveal.stderr[0]).toMatch(/--reveal applies to "read nhi" only/);
  });
});
