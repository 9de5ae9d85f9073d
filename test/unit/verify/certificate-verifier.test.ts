import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCrl } from '../../../src/emulator/moica/test-crl.js';
import { mayHaveIssued } from '../../../src/verify/path.js';
import { CrlStore, MOICA_POLICY_OID, type VerifyCertificateOptions, verifyCertificate } from '../../../src/verify/index.js';
import { type GpkiShapedPki, NOW, createGpkiShapedPki } from './gpki-shaped-pki.js';
import { failureCode } from './helpers.js';

let pki: GpkiShapedPki;
/** Fresh CRLs from both same-DN CAs and the root, none listing anything. */
let cleanCrls: Buffer[];

const DAY = 24 * 3600 * 1000;
const fresh = { thisUpdate: new Date(NOW.getTime() - DAY), nextUpdate: new Date(NOW.getTime() + 6 * DAY) };

beforeAll(async () => {
  pki = await createGpkiShapedPki();
  cleanCrls = await Promise.all([pki.root, pki.oldCa, pki.newCa].map(async (issuer) => (await createTestCrl({ issuer, ...fresh })).der));
}, 60_000);

function options(overrides: Partial<VerifyCertificateOptions> = {}): VerifyCertificateOptions {
  return {
    // The older same-DN CA is listed first: only the key identifier can pick the right one.
    trustAnchors: pki.root.pem,
    intermediates: [pki.oldCa.pem, pki.newCa.pem],
    requiredPolicies: [MOICA_POLICY_OID],
    revocation: { crls: new CrlStore(cleanCrls) },
    now: NOW,
    ...overrides,
  };
}


describe('verifyCertificate on a GRCA → MOICA → citizen shaped chain', () => {
  it('passes, choosing the issuing CA by Authority Key Identifier among two with the same DN', async () => {
    const result = await verifyCertificate(pki.citizen.der, options());
    expect(result.name).toBe('測試二');
    expect(result.idLast4).toBe('6789');
    expect(result.path.map((c) => c.der)).toEqual([pki.citizen.der, pki.newCa.der, pki.root.der]);
    // The candidate issuers are chosen by key identifier: the same-DN CA is not even a candidate
    // (a signature check would also reject it, but the key identifier decides first).
    expect(mayHaveIssued(pki.newCa.certificate, pki.citizen.certificate)).toBe(true);
    expect(mayHaveIssued(pki.oldCa.certificate, pki.citizen.certificate)).toBe(false);
    expect(mayHaveIssued(pki.root.certificate, pki.citizen.certificate)).toBe(false);
    // The same-DN CA that did not issue it is no substitute.
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ intermediates: [pki.oldCa.pem] })))).toBe('UntrustedCertificate');
  });

  it('fails an expired certificate with CertificateExpired', async () => {
    expect(await failureCode(verifyCertificate(pki.expired.der, options()))).toBe('CertificateExpired');
  });

  it('fails a certificate without the MOICA policy, or under a CA without it, with WrongPolicy', async () => {
    expect(await failureCode(verifyCertificate(pki.wrongPolicy.der, options()))).toBe('WrongPolicy');
    expect(await failureCode(verifyCertificate(pki.citizenOfUnpoliciedCa.der, options({ intermediates: [pki.unpoliciedCa.pem] })))).toBe('WrongPolicy');
    // Without a required policy the same certificate passes (the test PKI's default use).
    await expect(verifyCertificate(pki.wrongPolicy.der, options({ requiredPolicies: [] }))).resolves.toBeDefined();
  });

  it('fails an encryption-only certificate with NotSigningCertificate', async () => {
    expect(await failureCode(verifyCertificate(pki.encryptOnly.der, options()))).toBe('NotSigningCertificate');
    expect(await failureCode(verifyCertificate(pki.newCa.der, options()))).toBe('NotSigningCertificate');
  });
});

describe('revocation against operator-provided CRLs', () => {
  it('fails a certificate listed in its issuer\'s CRL with CertificateRevoked', async () => {
    const crl = await createTestCrl({ issuer: pki.newCa, ...fresh, revoked: [{ certificate: pki.citizen }] });
    const crls = new CrlStore([cleanCrls[0]!, crl.pem]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('CertificateRevoked');
  });

  it('does not apply the CRL of a same-DN CA with another key', async () => {
    const otherCaCrl = await createTestCrl({ issuer: pki.oldCa, ...fresh, revoked: [{ certificate: pki.citizen }] });
    const crls = new CrlStore([cleanCrls[0]!, cleanCrls[2]!, otherCaCrl.der]);
    await expect(verifyCertificate(pki.citizen.der, options({ revocation: { crls } }))).resolves.toBeDefined();
    // … and that CRL alone does not cover the citizen certificate at all.
    const only = new CrlStore([cleanCrls[0]!, otherCaCrl.der]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: only } })))).toBe('RevocationUnavailable');
  });

  it('fails closed on a CRL past its nextUpdate (RevocationStale), unless within the configured grace', async () => {
    const stale = await createTestCrl({
      issuer: pki.newCa,
      thisUpdate: new Date(NOW.getTime() - 10 * DAY),
      nextUpdate: new Date(NOW.getTime() - 2 * DAY),
    });
    const crls = new CrlStore([cleanCrls[0]!, stale.der]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('RevocationStale');
    await expect(verifyCertificate(pki.citizen.der, options({ revocation: { crls, maxStalenessMs: 3 * DAY } }))).resolves.toBeDefined();
    const noNextUpdate = await createTestCrl({ issuer: pki.newCa, thisUpdate: fresh.thisUpdate, nextUpdate: null });
    const crls2 = new CrlStore([cleanCrls[0]!, noNextUpdate.der]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: crls2 } })))).toBe('RevocationStale');
  });

  it('a stale CRL that lists the certificate still says revoked', async () => {
    const stale = await createTestCrl({
      issuer: pki.newCa,
      thisUpdate: new Date(NOW.getTime() - 10 * DAY),
      nextUpdate: new Date(NOW.getTime() - 2 * DAY),
      revoked: [{ certificate: pki.citizen }],
    });
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: new CrlStore([cleanCrls[0]!, stale.der]) } })))).toBe(
      'CertificateRevoked',
    );
  });

  it('fails closed without a CRL for an issuer on the path, or with a CRL whose signature does not verify', async () => {
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: new CrlStore([cleanCrls[0]!]) } })))).toBe(
      'RevocationUnavailable',
    );
    // scope "chain" (default) also needs the root's CRL for the issuing CA certificate; "leaf" does not.
    const leafOnly = new CrlStore([cleanCrls[2]!]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: leafOnly } })))).toBe('RevocationUnavailable');
    await expect(verifyCertificate(pki.citizen.der, options({ revocation: { crls: leafOnly, scope: 'leaf' } }))).resolves.toBeDefined();
    const forged = await createTestCrl({ issuer: pki.newCa, ...fresh, signingKey: pki.oldCa.privateKey });
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls: new CrlStore([cleanCrls[0]!, forged.der]) } })))).toBe(
      'RevocationUnavailable',
    );
  });

  it('does not use a delta CRL or one limited to CA certificates for a citizen certificate', async () => {
    const delta = await createTestCrl({
      issuer: pki.newCa,
      ...fresh,
      extensions: [new pkijs.Extension({ extnID: '2.5.29.27', critical: true, extnValue: new asn1js.Integer({ value: 1 }).toBER(false) })],
    });
    const caOnly = await createTestCrl({
      issuer: pki.newCa,
      ...fresh,
      extensions: [
        new pkijs.Extension({
          extnID: '2.5.29.28',
          critical: true,
          extnValue: new pkijs.IssuingDistributionPoint({ onlyContainsCACerts: true }).toSchema().toBER(false),
        }),
      ],
    });
    for (const crl of [delta, caOnly]) {
      const crls = new CrlStore([cleanCrls[0]!, crl.der]);
      expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('RevocationUnavailable');
    }
  });

  it('reads a CRL the size of MOICA\'s G2 complete CRL (412 000 entries, ~20 MB) and finds the certificate in it', async () => {
    const big = await createTestCrl({ issuer: pki.newCa, ...fresh, revoked: [{ certificate: pki.citizen }], bulkRevokedCount: 412_000 });
    expect(big.der.length).toBeGreaterThan(18_000_000);
    const started = Date.now();
    const crls = new CrlStore([cleanCrls[0]!, big.der]);
    expect(crls.current()[1]!.revoked.size).toBe(412_001);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('CertificateRevoked');
    expect(await failureCode(verifyCertificate(pki.wrongPolicy.der, options({ requiredPolicies: [], revocation: { crls } })))).toBe('resolved');
    // Generous for a loaded 2-core machine: this is about "usable", not a benchmark.
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  it('the CA certificate itself can be revoked by the root\'s CRL', async () => {
    const rootCrl = await createTestCrl({ issuer: pki.root, ...fresh, revoked: [{ certificate: pki.newCa }] });
    const crls = new CrlStore([rootCrl.der, cleanCrls[2]!]);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('CertificateRevoked');
  });

  it('a directory store picks up a refreshed CRL file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-crl-'));
    writeFileSync(join(dir, 'root.crl'), cleanCrls[0]!);
    writeFileSync(join(dir, 'moica.crl'), cleanCrls[2]!);
    const crls = CrlStore.fromDirectory(dir, { recheckMs: 0 });
    await expect(verifyCertificate(pki.citizen.der, options({ revocation: { crls } }))).resolves.toBeDefined();
    const revoked = await createTestCrl({ issuer: pki.newCa, ...fresh, crlNumber: 2, revoked: [{ certificate: pki.citizen }] });
    writeFileSync(join(dir, 'moica.crl'), revoked.pem);
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('CertificateRevoked');
  });

  it('a directory store keeps the last good CRL when a file is replaced by garbage, and never throws during a check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-crl-'));
    writeFileSync(join(dir, 'root.crl'), cleanCrls[0]!);
    writeFileSync(join(dir, 'moica.crl'), cleanCrls[2]!);
    const crls = CrlStore.fromDirectory(dir, { recheckMs: 0 });
    writeFileSync(join(dir, 'moica.crl'), 'half a download');
    await expect(verifyCertificate(pki.citizen.der, options({ revocation: { crls } }))).resolves.toBeDefined();
    expect(crls.problems.join('\n')).toMatch(/moica\.crl.*not a DER X\.509 CRL/);
    // A new unreadable file with no earlier version is simply not a usable CRL.
    rmSync(join(dir, 'moica.crl'));
    writeFileSync(join(dir, 'other.crl'), 'garbage');
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('RevocationUnavailable');
    rmSync(dir, { recursive: true });
    expect(await failureCode(verifyCertificate(pki.citizen.der, options({ revocation: { crls } })))).toBe('RevocationUnavailable');
  });

  it('refuses unreadable CRL input as a configuration error', () => {
    expect(() => new CrlStore([Buffer.from('not a crl')])).toThrow(TypeError);
  });
});
