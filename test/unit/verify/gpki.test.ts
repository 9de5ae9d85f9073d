import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import {
  GPKI_CERTIFICATES,
  MOICA_POLICY_OID,
  SHIPPED_CERTS_DIR,
  VerifyError,
  buildCertificatePath,
  loadGovernmentTrust,
} from '../../../src/verify/index.js';

function derOfPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}
const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

describe('the shipped Government PKI anchors (certs/)', () => {
  it('loads GRCA G1 and G2 as roots and MOICA G2 as the issuing CA, each matching its pin', () => {
    const trust = loadGovernmentTrust();
    expect(trust.loaded.map((c) => c.id).sort()).toEqual(['grca-g1', 'grca-g2', 'moica-g2']);
    expect(trust.trustAnchors.map((c) => sha256(c.der)).sort()).toEqual(
      [
        '7600295eefe85b9e1fd624db76062aaaae59818a54d2774cd4c0b2c01131e1b3',
        '70b922bfda0e3f4a342e4ee22d579ae598d071cc5ec9c30f123680340388aea5',
      ].sort(),
    );
    expect(trust.intermediates.map((c) => sha256(c.der))).toEqual(['c4c462de463f856804dc898338d2cecb55fba74155851599d8fb7d70218fd1be']);
    expect(trust.requiredPolicies).toEqual([MOICA_POLICY_OID]);
    // The files on disk are what the pins say (independent of the loader's own check).
    for (const info of GPKI_CERTIFICATES.filter((c) => c.file)) {
      expect(sha256(derOfPem(readFileSync(join(SHIPPED_CERTS_DIR, info.file!), 'utf8')))).toBe(info.sha256);
    }
  });

  it('MOICA G2 chains to GRCA G2 (not to GRCA G1, which has the same subject DN)', async () => {
    const trust = loadGovernmentTrust();
    const moica = trust.intermediates[0]!;
    const path = await buildCertificatePath(moica, { trustAnchors: trust.trustAnchors, now: new Date('2026-06-01T00:00:00Z') });
    expect(path.map((c) => sha256(c.der))).toEqual([
      'c4c462de463f856804dc898338d2cecb55fba74155851599d8fb7d70218fd1be',
      '70b922bfda0e3f4a342e4ee22d579ae598d071cc5ec9c30f123680340388aea5',
    ]);
    // With only GRCA G1 trusted there is no path, though the issuer name matches.
    const g1 = trust.trustAnchors.filter((c) => sha256(c.der).startsWith('7600295e'));
    await expect(buildCertificatePath(moica, { trustAnchors: g1, now: new Date('2026-06-01T00:00:00Z') })).rejects.toMatchObject({
      code: 'UntrustedCertificate',
    });
    // After MOICA G2 expires the same path is out of date.
    await expect(buildCertificatePath(moica, { trustAnchors: trust.trustAnchors, now: new Date('2034-02-01T00:00:00Z') })).rejects.toMatchObject({
      code: 'CertificateExpired',
    });
  });

  it('refuses a shipped file that does not match its pin (a tampered install)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-certs-'));
    for (const info of GPKI_CERTIFICATES.filter((c) => c.file)) {
      writeFileSync(join(dir, info.file!), readFileSync(join(SHIPPED_CERTS_DIR, info.file!)));
    }
    writeFileSync(join(dir, 'moica-g2.pem'), readFileSync(join(SHIPPED_CERTS_DIR, 'grca-g2.pem')));
    expect(() => loadGovernmentTrust({ certsDir: dir })).toThrow(/moica-g2\.pem.*SHA-256/);
  });

  it('accepts an operator-supplied certificate only when its SHA-256 is one of the G3 pins', async () => {
    const pki = await getTestPki();
    expect(() => loadGovernmentTrust({ operatorCertificates: [pki.issuing.pem] })).toThrow(/not a pinned Government PKI certificate/);
    const pins = GPKI_CERTIFICATES.filter((c) => !c.file).map((c) => c.id).sort();
    expect(pins).toEqual(['grca-g3', 'moica-g3']);
    // A shipped certificate given again is recognised by its pin and not duplicated.
    const again = loadGovernmentTrust({ operatorCertificates: [readFileSync(join(SHIPPED_CERTS_DIR, 'moica-g2.pem'), 'utf8')] });
    expect(again.intermediates).toHaveLength(1);
  });

  it('is a VerifyError-free configuration step: bad input is a TypeError', () => {
    expect(() => loadGovernmentTrust({ operatorCertificates: ['not pem'] })).toThrow(TypeError);
    expect(() => loadGovernmentTrust({ operatorCertificates: ['not pem'] })).not.toThrow(VerifyError);
  });
});
