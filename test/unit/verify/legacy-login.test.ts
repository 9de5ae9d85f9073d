import { constants, createHash, privateEncrypt } from 'node:crypto';
import { createCmsSignedData } from '../../../src/crypto/cms.js';
import { pkcs1v15SignatureBlock } from '../../../src/crypto/pkcs1.js';
import { createTestCrl } from '../../../src/emulator/moica/test-crl.js';
import type { TestCertificate } from '../../../src/emulator/moica/test-pki.js';
import {
  CrlStore,
  InMemoryNonceStore,
  LegacyLoginVerifier,
  type LegacyLoginVerifierOptions,
  MOICA_POLICY_OID,
  matchIdNumber,
  parseRocBirthDate,
} from '../../../src/verify/index.js';
import { type GpkiShapedPki, NOW, createGpkiShapedPki } from './gpki-shaped-pki.js';
import { failureCode } from './helpers.js';

/**
 * The login government sites use today: the page gets a nonce from its back end, HiPKI signs it
 * (PKCS#7 attached or detached, or PKCS#1 with the certificate next to it) and the form carries
 * the signature with the ID number and ROC birth date the citizen typed.
 */

let pki: GpkiShapedPki;
let crls: CrlStore;
const DAY = 24 * 3600 * 1000;
const fresh = { thisUpdate: new Date(NOW.getTime() - DAY), nextUpdate: new Date(NOW.getTime() + 6 * DAY) };

beforeAll(async () => {
  pki = await createGpkiShapedPki();
  crls = new CrlStore(await Promise.all([pki.root, pki.newCa].map(async (issuer) => (await createTestCrl({ issuer, ...fresh })).der)));
}, 60_000);

function verifier(overrides: Partial<LegacyLoginVerifierOptions> = {}) {
  const clock = { t: NOW.getTime() };
  const v = new LegacyLoginVerifier({
    trustAnchors: pki.root.pem,
    intermediates: [pki.oldCa.pem, pki.newCa.pem],
    requiredPolicies: [MOICA_POLICY_OID],
    revocation: { crls },
    now: () => new Date(clock.t),
    ...overrides,
  });
  return { v, clock };
}

function rawSign(key: TestCertificate, digest: Buffer, hash: 'sha256' | 'sha1' | 'sha384' | 'sha512'): Buffer {
  return privateEncrypt({ key: key.privateKey, padding: constants.RSA_NO_PADDING }, pkcs1v15SignatureBlock(256, hash, digest));
}

async function pkcs7(signer: TestCertificate, content: string, detached = false): Promise<string> {
  const der = await createCmsSignedData({
    content: Buffer.from(content, 'utf8'),
    detached,
    signerCertificate: signer.der,
    sign: async (digest, hash) => rawSign(signer, digest, hash),
  });
  return der.toString('base64');
}

function pkcs1(signer: TestCertificate, content: string) {
  const digest = createHash('sha256').update(Buffer.from(content, 'utf8')).digest();
  return {
    type: 'PKCS1' as const,
    signature: rawSign(signer, digest, 'sha256').toString('base64'),
    certificate: signer.der.toString('base64'),
    hashAlgorithm: 'SHA256',
  };
}


const TYPED = { idNumber: 'A123456789', birthDate: '0790101' };

describe('LegacyLoginVerifier', () => {
  it('accepts PKCS#7 attached, PKCS#7 detached and PKCS#1 signatures over the issued nonce', async () => {
    const { v } = verifier();
    let nonce = await v.issueNonce();
    const attached = await v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, nonce) }, { nonce, ...TYPED });
    expect(attached).toMatchObject({ name: '測試二', serialNumber: '9900000000005678', idLast4: '6789', signatureType: 'PKCS7' });
    expect(attached.birthDate).toEqual({ rocYear: 79, year: 1990, month: 1, day: 1, iso: '1990-01-01' });

    nonce = await v.issueNonce();
    await expect(v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, nonce, true) }, { nonce, ...TYPED })).resolves.toMatchObject({
      signatureType: 'PKCS7',
    });

    nonce = await v.issueNonce();
    await expect(v.verify(pkcs1(pki.citizen, nonce), { nonce, ...TYPED })).resolves.toMatchObject({ signatureType: 'PKCS1', idLast4: '6789' });
  });

  it('fails a signature over another nonce: ChallengeMismatch when the content is visible, else BadSignature', async () => {
    const { v } = verifier();
    const other = await v.issueNonce();
    let nonce = await v.issueNonce();
    expect(await failureCode(v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, other) }, { nonce }))).toBe('ChallengeMismatch');
    nonce = await v.issueNonce();
    expect(await failureCode(v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, other, true) }, { nonce }))).toBe('BadSignature');
    nonce = await v.issueNonce();
    expect(await failureCode(v.verify(pkcs1(pki.citizen, other), { nonce }))).toBe('BadSignature');
  });

  it('fails a nonce it never issued, a reused one and an old one, each with its own reason', async () => {
    const { v, clock } = verifier();
    const foreign = 'x'.repeat(43);
    expect(await failureCode(v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, foreign) }, { nonce: foreign }))).toBe('UnknownNonce');
    const nonce = await v.issueNonce();
    const signature = await pkcs7(pki.citizen, nonce);
    await expect(v.verify({ type: 'PKCS7', signature }, { nonce })).resolves.toBeDefined();
    expect(await failureCode(v.verify({ type: 'PKCS7', signature }, { nonce }))).toBe('NonceReused');
    const late = await v.issueNonce();
    clock.t += 5 * 60_000 + 1;
    expect(await failureCode(v.verify({ type: 'PKCS7', signature: await pkcs7(pki.citizen, late) }, { nonce: late }))).toBe('NonceExpired');
  });

  it('fails a typed ID number whose last four differ from the certificate (IdMismatch), and spends the nonce', async () => {
    const { v } = verifier();
    const nonce = await v.issueNonce();
    const signature = await pkcs7(pki.citizen, nonce);
    expect(await failureCode(v.verify({ type: 'PKCS7', signature }, { nonce, idNumber: 'B223456782' }))).toBe('IdMismatch');
    expect(await failureCode(v.verify({ type: 'PKCS7', signature }, { nonce, ...TYPED }))).toBe('NonceReused');
  });

  it('refuses a malformed ID number or birth date before spending the nonce (the citizen can correct a typo)', async () => {
    const { v } = verifier();
    const nonce = await v.issueNonce();
    const signature = await pkcs7(pki.citizen, nonce);
    expect(await failureCode(v.verify({ type: 'PKCS7', signature }, { nonce, idNumber: 'A123456788' }))).toBe('InvalidIdNumber');
    expect(await failureCode(v.verify({ type: 'PKCS7', signature }, { nonce, ...TYPED, birthDate: '0790230' }))).toBe('InvalidBirthDate');
    await expect(v.verify({ type: 'PKCS7', signature }, { nonce, ...TYPED })).resolves.toBeDefined();
  });

  it('applies the certificate checks: revoked, expired, wrong policy, wrong key usage', async () => {
    const revokedCrls = new CrlStore([
      (await createTestCrl({ issuer: pki.root, ...fresh })).der,
      (await createTestCrl({ issuer: pki.newCa, ...fresh, revoked: [{ certificate: pki.citizen }] })).der,
    ]);
    const cases: Array<[TestCertificate, string, Partial<LegacyLoginVerifierOptions>]> = [
      [pki.citizen, 'CertificateRevoked', { revocation: { crls: revokedCrls } }],
      [pki.expired, 'CertificateExpired', {}],
      [pki.wrongPolicy, 'WrongPolicy', {}],
      [pki.encryptOnly, 'NotSigningCertificate', {}],
    ];
    for (const [signer, expected, overrides] of cases) {
      const { v } = verifier(overrides);
      const nonce = await v.issueNonce();
      expect([expected, await failureCode(v.verify({ type: 'PKCS7', signature: await pkcs7(signer, nonce) }, { nonce }))]).toEqual([expected, expected]);
    }
  });

  it('reports malformed submissions as MalformedToken without spending the nonce', async () => {
    const store = new InMemoryNonceStore();
    const { v } = verifier({ nonceStore: store });
    const nonce = await v.issueNonce();
    expect(await failureCode(v.verify({ type: 'PKCS7', signature: 'bm90IGNtcw==' }, { nonce }))).toBe('MalformedToken');
    expect(await failureCode(v.verify({ type: 'RAW' } as never, { nonce }))).toBe('MalformedToken');
    expect(await failureCode(v.verify({ ...pkcs1(pki.citizen, nonce), hashAlgorithm: 'MD5' }, { nonce }))).toBe('UnsupportedAlgorithm');
    await expect(v.verify(pkcs1(pki.citizen, nonce), { nonce })).resolves.toBeDefined();
  });
});

it('refuses a bad configuration at construction (TypeError), not at a login', () => {
  expect(() => new LegacyLoginVerifier({ trustAnchors: [] })).toThrow(TypeError);
  expect(() => new LegacyLoginVerifier({ trustAnchors: 'not pem' })).toThrow(TypeError);
  expect(() => new LegacyLoginVerifier({ trustAnchors: pki.root.pem, intermediates: 'not pem' })).toThrow(TypeError);
  expect(() => new LegacyLoginVerifier({ trustAnchors: pki.root.pem, revocation: { crls: [] as never } })).toThrow(TypeError);
  expect(() => new LegacyLoginVerifier({ trustAnchors: pki.root.pem, revocation: { crls, maxStalenessMs: -1 } })).toThrow(RangeError);
});

describe('typed identity helpers', () => {
  it('matchIdNumber checks the format and checksum, then the last four against the certificate', () => {
    expect(matchIdNumber('A123456789', '6789')).toBe(true);
    expect(matchIdNumber(' a123456789 ', '6789')).toBe(true);
    expect(matchIdNumber('Ａ１２３４５６７８９', '6789')).toBe(true); // full-width input from a Chinese IME
    expect(matchIdNumber('A800006785', '6785')).toBe(true); // the 2021 resident-certificate format (8/9 as second digit)
    expect(matchIdNumber('B223456782', '6789')).toBe(false);
    expect(matchIdNumber('A123456789', undefined)).toBe(false);
    for (const bad of ['A123456788', 'A12345678', '1123456789', 'A323456789', '', 'A1234567890']) {
      expect(() => matchIdNumber(bad, '6789')).toThrow(expect.objectContaining({ code: 'InvalidIdNumber' }));
    }
  });

  it('parseRocBirthDate reads 民國 YYYMMDD and refuses impossible or future dates', () => {
    const now = new Date('2026-06-01T00:00:00Z');
    expect(parseRocBirthDate('0790101', now)).toEqual({ rocYear: 79, year: 1990, month: 1, day: 1, iso: '1990-01-01' });
    expect(parseRocBirthDate('1130229', now)).toMatchObject({ year: 2024, iso: '2024-02-29' });
    expect(parseRocBirthDate('０７９０１０１', now).iso).toBe('1990-01-01');
    for (const bad of ['790101', '1120229', '0791301', '0790000', '0000101', '1160101', '19900101', '079-01-01']) {
      expect(() => parseRocBirthDate(bad, now)).toThrow(expect.objectContaining({ code: 'InvalidBirthDate' }));
    }
  });
});
