import { mkdtempSync, writeFileSync } from 'node:fs';
import { constants, privateEncrypt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCmsSignedData } from '../../../src/crypto/cms.js';
import { pkcs1v15SignatureBlock } from '../../../src/crypto/pkcs1.js';
import { createTestCrl } from '../../../src/emulator/moica/test-crl.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { AuthTokenValidator, CrlStore, LegacyLoginVerifier, loadGovernmentTrust } from '../../../src/verify/index.js';

/**
 * The production wiring of docs/verify-real-certificates.md, as written there: the shipped
 * Government PKI anchors, a CRL directory, the legacy login verifier. No real citizen
 * certificate exists in the tests, so the check here is that the wiring works and that a
 * certificate from outside the Government PKI (the test PKI) is refused.
 */
it('loadGovernmentTrust + CrlStore.fromDirectory + LegacyLoginVerifier refuse a non-GPKI citizen', async () => {
  const pki = await getTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'cb-recipe-'));
  const now = Date.now();
  writeFileSync(join(dir, 'test.crl'), (await createTestCrl({ issuer: pki.issuing, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 3600_000) })).der);

  const crls = CrlStore.fromDirectory(dir);
  const login = new LegacyLoginVerifier({ ...loadGovernmentTrust(), revocation: { crls } });
  const nonce = await login.issueNonce();
  const signature = (
    await createCmsSignedData({
      content: Buffer.from(nonce),
      signerCertificate: pki.sign.der,
      sign: async (digest, hash) => privateEncrypt({ key: pki.sign.privateKey, padding: constants.RSA_NO_PADDING }, pkcs1v15SignatureBlock(256, hash, digest)),
    })
  ).toString('base64');
  await expect(login.verify({ type: 'PKCS7', signature }, { nonce, idNumber: 'A123456789', birthDate: '0790101' })).rejects.toMatchObject({
    code: 'UntrustedCertificate',
  });
  // The native login token's validator takes the same options (docs/api.md).
  const validator = new AuthTokenValidator({ ...loadGovernmentTrust(), revocation: { crls } });
  await expect(validator.issueNonce()).resolves.toMatch(/^[A-Za-z0-9_-]{43}$/);
}, 30_000);
