import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getTestPki, TEST_HOLDER } from '../../../src/emulator/moica/test-pki.js';
import { certificateFacts, certificateRole } from '../../../src/crypto/certificate-facts.js';

describe('MOICA test PKI and certificate facts', () => {
  it('issues a chain whose every name says TEST and whose signatures check out', async () => {
    const pki = await getTestPki();
    const root = new X509Certificate(pki.root.der);
    const issuing = new X509Certificate(pki.issuing.der);
    const sign = new X509Certificate(pki.sign.der);
    const encrypt = new X509Certificate(pki.encrypt.der);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(issuing.verify(root.publicKey)).toBe(true);
    expect(sign.verify(issuing.publicKey)).toBe(true);
    expect(encrypt.verify(issuing.publicKey)).toBe(true);
    expect(root.subject).toContain('TEST');
    expect(issuing.subject).toContain('TEST 內政部憑證管理中心 (NOT REAL)');
    expect(root.ca).toBe(true);
    expect(sign.ca).toBe(false);
    // the certificate carries the generated key, which is not the CA's
    expect(sign.publicKey.export({ format: 'jwk' }).n).toBe(pki.sign.publicKey.export({ format: 'jwk' }).n);
    expect(sign.publicKey.export({ format: 'jwk' }).n).not.toBe(encrypt.publicKey.export({ format: 'jwk' }).n);
  });

  it('is accepted by OpenSSL as a chain', async () => {
    const pki = await getTestPki();
    const dir = mkdtempSync(join(tmpdir(), 'moica-pki-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), pki.caBundlePem);
      writeFileSync(join(dir, 'sign.pem'), pki.sign.pem);
      const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'sign.pem')]).toString();
      expect(out).toContain('OK');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads holder, serialNumber, ID last four, issuer, validity, usage and role', async () => {
    const pki = await getTestPki();
    const sign = certificateFacts(pki.sign.der);
    expect(sign.holderName).toBe('測試一');
    expect(sign.subject).toBe(`C=TW, CN=測試一, serialNumber=${TEST_HOLDER.serialNumber}`);
    expect(sign.subjectSerialNumber).toMatch(/^\d{16}$/);
    expect(sign.idLastFour).toBe('6789');
    expect(sign.issuer).toBe('C=TW, O=cardbridge TEST, OU=TEST 內政部憑證管理中心 (NOT REAL)');
    expect(sign.keyUsage).toEqual(['digitalSignature', 'nonRepudiation']);
    expect(sign.role).toBe('sign');
    expect(sign.isCa).toBe(false);
    expect(sign.notBefore.getTime()).toBeLessThan(Date.now());
    expect(sign.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(sign.notAfter.toISOString()).toBe(new Date(new X509Certificate(pki.sign.der).validTo).toISOString());
    expect(sign.publicKey?.bits).toBe(2048);
    expect(sign.publicKey?.exponent).toBe(65537);
    expect(sign.publicKey?.modulus.toString('base64url')).toBe(pki.sign.publicKey.export({ format: 'jwk' }).n);

    const encrypt = certificateFacts(pki.encrypt.der);
    expect(encrypt.keyUsage).toEqual(['keyEncipherment', 'dataEncipherment']);
    expect(encrypt.role).toBe('encrypt');
    const root = certificateFacts(pki.root.der);
    expect(root.role).toBe('ca');
    expect(root.idLastFour).toBeUndefined();
    expect(root.holderName).toContain('TEST');
  });

  it('derives the role from key usage', () => {
    expect(certificateRole(['keyEncipherment'], false)).toBe('encrypt');
    expect(certificateRole(['digitalSignature', 'keyEncipherment'], false)).toBe('sign');
    expect(certificateRole(['keyCertSign'], false)).toBe('ca');
    expect(certificateRole([], true)).toBe('ca');
  });

  it('rejects bytes that are not a certificate as a protocol error', () => {
    expect(() => certificateFacts(Buffer.from('3003020101', 'hex'))).toThrow(expect.objectContaining({ code: 'ProtocolError' }));
  });
});
