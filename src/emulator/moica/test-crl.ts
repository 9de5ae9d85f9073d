import { sign, webcrypto } from 'node:crypto';
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
  /**
   * This many further revoked serial numbers (0x3C…01, 0x3C…02, …), written straight into the
   * DER: MOICA's G2 complete CRL has about 412 000 entries, too many to build through pkijs.
   */
  bulkRevokedCount?: number;
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
  let der = Buffer.from(crl.toSchema(true).toBER(false));
  if (options.bulkRevokedCount) der = withBulkEntries(der, options.bulkRevokedCount, options.signingKey ?? options.issuer.privateKey);
  return { der, pem: toPem(der, 'X509 CRL') };
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);

/** Each child TLV of a constructed DER value (short and long definite lengths). */
function childrenOf(der: Buffer, start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = start;
  while (at < end) {
    let length = der[at + 1]!;
    let header = 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      length = der.readUIntBE(at + 2, count);
      header += count;
    }
    out.push(der.subarray(at, at + header + length));
    at += header + length;
  }
  return out;
}
function contentStart(der: Buffer): number {
  return der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
}

/** Re-builds the TBSCertList with `count` more entries and signs it again (SHA-256 with RSA). */
function withBulkEntries(der: Buffer, count: number, key: TestCertificate['privateKey']): Buffer {
  const [tbs, algorithm] = childrenOf(der, contentStart(der), der.length);
  const fields = childrenOf(tbs!, contentStart(tbs!), tbs!.length);
  const date = tlv(0x17, Buffer.from('240101000000Z'));
  // crlEntryExtensions { reasonCode keyCompromise }, as real entries carry a reason
  const reason = tlv(0x30, tlv(0x30, Buffer.concat([tlv(0x06, Buffer.from([0x55, 0x1d, 0x15])), tlv(0x04, tlv(0x0a, Buffer.from([1])))])));
  const bulk: Buffer[] = [];
  for (let i = 1; i <= count; i++) {
    const serial = Buffer.alloc(16);
    serial[0] = 0x3c;
    serial.writeUInt32BE(i, 12);
    bulk.push(tlv(0x30, Buffer.concat([tlv(0x02, serial), date, reason])));
  }
  // Fields: [version] signature issuer thisUpdate [nextUpdate] [revokedCertificates] [[0] extensions]
  const existing = fields.findIndex((f, i) => i >= 3 && f[0] === 0x30);
  const entries = existing >= 0 ? [...childrenOf(fields[existing]!, contentStart(fields[existing]!), fields[existing]!.length), ...bulk] : bulk;
  const list = tlv(0x30, Buffer.concat(entries));
  const at = existing >= 0 ? existing : fields.findIndex((f) => f[0] === 0xa0);
  const next = [...fields];
  if (existing >= 0) next[existing] = list;
  else if (at >= 0) next.splice(at, 0, list);
  else next.push(list);
  const newTbs = tlv(0x30, Buffer.concat(next));
  const signature = sign('sha256', newTbs, key);
  return tlv(0x30, Buffer.concat([newTbs, algorithm!, tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}
