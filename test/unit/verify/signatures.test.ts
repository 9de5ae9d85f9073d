import { createHash } from 'node:crypto';
import { createTestPki, getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import type { MoicaService } from '../../../src/services/moica/moica-service.js';
import { verifyCmsSignedData, verifyPkcs1Signature } from '../../../src/verify/index.js';
import { PIN, cardService, failureCode } from './helpers.js';

let pki: MoicaTestPki;
let service: MoicaService;
let stranger: MoicaTestPki;

beforeAll(async () => {
  pki = await getTestPki();
  service = await cardService(pki);
  stranger = await createTestPki();
}, 30_000);

const DATA = Buffer.from('HiPKI login challenge 2f9c1a, 登入');


describe('verifyPkcs1Signature', () => {
  it('verifies a card signature over data and over a digest', async () => {
    const { signature, certificate } = await service.sign({ data: DATA, hash: 'sha256', format: 'pkcs1' }, PIN);
    const facts = await verifyPkcs1Signature({ data: DATA, hash: 'sha256', signature, certificate, trustAnchors: pki.caBundlePem });
    expect(facts).toMatchObject({ name: pki.holder.name, serialNumber: pki.holder.serialNumber, idLast4: pki.holder.idLastFour });

    const digest = createHash('sha512').update(DATA).digest();
    const bySha512 = await service.sign({ digest, hash: 'sha512', format: 'pkcs1' }, PIN);
    await expect(
      verifyPkcs1Signature({
        digest,
        hash: 'sha512',
        signature: bySha512.signature.toString('base64'),
        certificate: pki.sign.pem,
        trustAnchors: [pki.root.der],
        intermediates: [pki.issuing.pem],
      }),
    ).resolves.toMatchObject({ serialNumber: pki.holder.serialNumber });
  });

  it('rejects other data, a wrong hash, an untrusted anchor and SHA-1 by default', async () => {
    const { signature, certificate } = await service.sign({ data: DATA, hash: 'sha256', format: 'pkcs1' }, PIN);
    const base = { hash: 'sha256' as const, signature, certificate, trustAnchors: pki.caBundlePem };
    expect(await failureCode(verifyPkcs1Signature({ ...base, data: Buffer.from('other') }))).toBe('BadSignature');
    expect(await failureCode(verifyPkcs1Signature({ ...base, data: DATA, hash: 'sha384' }))).toBe('BadSignature');
    expect(await failureCode(verifyPkcs1Signature({ ...base, data: DATA, trustAnchors: stranger.caBundlePem }))).toBe('UntrustedCertificate');
    expect(await failureCode(verifyPkcs1Signature({ ...base, data: DATA, hash: 'sha1' }))).toBe('UnsupportedAlgorithm');
    expect(await failureCode(verifyPkcs1Signature({ ...base, data: DATA, signature: 'not base64!' }))).toBe('MalformedToken');

    const sha1 = await service.sign({ data: DATA, hash: 'sha1', format: 'pkcs1' }, PIN);
    await expect(verifyPkcs1Signature({ ...base, ...sha1, data: DATA, hash: 'sha1', allowSha1: true })).resolves.toBeDefined();
  });
});

describe('verifyCmsSignedData', () => {
  it('verifies attached CMS from the card and returns the content', async () => {
    const { signature } = await service.sign({ data: DATA, hash: 'sha256', format: 'cms' }, PIN);
    const facts = await verifyCmsSignedData({ cms: signature, trustAnchors: pki.root.pem });
    expect(facts).toMatchObject({ name: pki.holder.name, serialNumber: pki.holder.serialNumber, hash: 'sha256', detached: false });
    expect(facts.content.equals(DATA)).toBe(true);
    expect(facts.signingTime).toBeInstanceOf(Date);
    // as base64 text, and with the content given again (must match)
    await expect(verifyCmsSignedData({ cms: signature.toString('base64'), content: DATA, trustAnchors: pki.root.pem })).resolves.toBeDefined();
    expect(await failureCode(verifyCmsSignedData({ cms: signature, content: Buffer.from('other'), trustAnchors: pki.root.pem }))).toBe('BadSignature');
  });

  it('verifies detached CMS made from data and from a digest', async () => {
    const fromData = await service.sign({ data: DATA, hash: 'sha256', format: 'cms', detached: true }, PIN);
    const facts = await verifyCmsSignedData({ cms: fromData.signature, content: DATA, trustAnchors: pki.root.pem });
    expect(facts).toMatchObject({ detached: true, serialNumber: pki.holder.serialNumber });

    const digest = createHash('sha384').update(DATA).digest();
    const fromDigest = await service.sign({ digest, hash: 'sha384', format: 'cms', signingTime: false }, PIN);
    const second = await verifyCmsSignedData({ cms: fromDigest.signature, content: DATA, trustAnchors: pki.root.pem });
    expect(second).toMatchObject({ detached: true, hash: 'sha384' });
    expect(second.signingTime).toBeUndefined();

    expect(await failureCode(verifyCmsSignedData({ cms: fromData.signature, content: Buffer.from('tampered'), trustAnchors: pki.root.pem }))).toBe('BadSignature');
    expect(await failureCode(verifyCmsSignedData({ cms: fromData.signature, trustAnchors: pki.root.pem }))).toBe('MalformedToken');
  });

  it('needs the intermediates from the caller when the CMS does not carry them', async () => {
    const { signature } = await service.sign({ data: DATA, format: 'cms', includeChain: false }, PIN);
    expect(await failureCode(verifyCmsSignedData({ cms: signature, trustAnchors: pki.root.pem }))).toBe('UntrustedCertificate');
    await expect(verifyCmsSignedData({ cms: signature, trustAnchors: pki.root.pem, intermediates: pki.issuing.der })).resolves.toBeDefined();
  });

  it('rejects a foreign PKI, an expired certificate, a tampered signature and garbage', async () => {
    const { signature } = await service.sign({ data: DATA, format: 'cms' }, PIN);
    expect(await failureCode(verifyCmsSignedData({ cms: signature, trustAnchors: stranger.root.pem }))).toBe('UntrustedCertificate');
    const later = new Date(pki.sign.certificate.notAfter.value.getTime() + 1000);
    expect(await failureCode(verifyCmsSignedData({ cms: signature, trustAnchors: pki.root.pem, now: later }))).toBe('CertificateExpired');

    // the RSA signature is the last 256 bytes of the SignerInfo's OCTET STRING; flip one of them
    const tampered = Buffer.from(signature);
    const at = tampered.lastIndexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4 + 10;
    expect(at).toBe(tampered.length - 256 + 10);
    tampered[at]! ^= 0x01;
    expect(await failureCode(verifyCmsSignedData({ cms: tampered, trustAnchors: pki.root.pem }))).toBe('BadSignature');

    expect(await failureCode(verifyCmsSignedData({ cms: Buffer.from('not cms'), trustAnchors: pki.root.pem }))).toBe('MalformedToken');
  });
});
