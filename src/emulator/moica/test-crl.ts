import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { type TestCertificate, keyIdentifierOf, toPem } from './test-pki.js';

/**
 * Generated CRLs for the verifier's tests (and relying-site developers' own): signed by a test
 * CA's key, shaped like MOICA's complete CRLs (issuer DN, Authority Key Identifier, CRL number).
 * Never a real CRL, never the network.
 */

export interface TestCrlOptions {
  /** The CA whose key signs the CRL and whose subject is its issuer. */
  issuer: TestCertificate;
  /** Revoked certificates: their serial numbers (or the certificates) and when. */
  revoked?: Array<{ certificate: TestCertificate | pkijs.Certificate; date?: Date }>;
  thisUpdate: Date;
  /** `null` leaves nextUpdate out. */
  nextUpdate: Date | null;
  /** Leave out the Authority Key Identifier (default false). */
  withoutAuthorityKeyId?: boolean;
  crlNumber?: number;
  /** More CRL extensions (e.g. a delta CRL indicator, an issuingDistributionPoint). */
  extensions?: pkijs.Extension[];
  /** Sign with another key (a CRL whose signature does not verify under the issuer). */
  signingKey?: TestCertificate['privateKey'];
}

export interface TestCrl {
  der: Buffer;
  pem: string;
}

export async function createTestCrl(options: TestCrlOptions): Promise<TestCrl> {
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = options.issuer.certificate.subject;
  crl.thisUpdate = new pkijs.Time({ type: 0, value: options.thisUpdate });
  if (options.nextUpdate) crl.nextUpdate = new pkijs.Time({ type: 0, value: options.nextUpdate });
  const revoked = options.revoked ?? [];
  if (revoked.length > 0) {
    crl.revokedCertificates = revoked.map(({ certificate, date }) => {
      const cert = 'certificate' in certificate ? certificate.certificate : certificate;
      return new pkijs.RevokedCertificate({
        userCertificate: new asn1js.Integer({ valueHex: cert.serialNumber.valueBlock.valueHexView }),
        revocationDate: new pkijs.Time({ type: 0, value: date ?? options.thisUpdate }),
      });
    });
  }
  const extensions: pkijs.Extension[] = [];
  if (!options.withoutAuthorityKeyId) {
    const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: keyIdentifierOf(options.issuer) }) });
    extensions.push(new pkijs.Extension({ extnID: '2.5.29.35', critical: false, extnValue: aki.toSchema().toBER(false) }));
  }
  extensions.push(
    new pkijs.Extension({ extnID: '2.5.29.20', critical: false, extnValue: new asn1js.Integer({ value: options.crlNumber ?? 1 }).toBER(false) }),
  );
  extensions.push(...(options.extensions ?? []));
  crl.crlExtensions = new pkijs.Extensions({ extensions });
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    (options.signingKey ?? options.issuer.privateKey).export({ type: 'pkcs8', format: 'der' }),
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  await crl.sign(key as unknown as Parameters<pkijs.CertificateRevocationList['sign']>[0], 'SHA-256');
  const der = Buffer.from(crl.toSchema(true).toBER(false));
  return { der, pem: toPem(der, 'X509 CRL') };
}
