import { X509Certificate, createHash } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { decodeNamedBits } from '../crypto/named-bits.js';
import { VerifyError } from './errors.js';

/**
 * Certification path building and checking for the relying party (RFC 5280 §6, the parts a
 * MOICA login needs). The issuer of each certificate is chosen by its Authority Key Identifier:
 * all MOICA CA generations (G1, G2, G3) share one subject DN, and so do GRCA G1 and G2, so a
 * name alone would pick the wrong CA. Checked on the path: each signature, name chaining, CA
 * flag, keyCertSign and pathLen of every issuer, unknown critical extensions, the signature
 * algorithm, validity periods, and (when asked) a certificate policy. Revocation is separate
 * (crl.ts); key usage of the end certificate is the caller's (certificates.ts).
 */

export interface ParsedCertificate {
  der: Buffer;
  certificate: pkijs.Certificate;
}

export interface PathOptions {
  /** Roots, trusted as configured: their own signature, extensions and flags are not judged. */
  trustAnchors: readonly ParsedCertificate[];
  /** Candidate issuing CAs (any number, any generation). */
  intermediates?: readonly ParsedCertificate[];
  /** When to judge validity. */
  now: Date;
  /** Accept certificates signed with SHA-1 below the trust anchor; default false. */
  allowSha1?: boolean;
  /**
   * Certificate policy OIDs, any of which the end certificate must assert; every CA certificate
   * between it and the anchor must assert the same OID or anyPolicy. No policy mapping is done
   * (MOICA uses none). Empty or absent: no policy check.
   */
  requiredPolicies?: readonly string[];
}

const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  certificatePolicies: '2.5.29.32',
  anyPolicy: '2.5.29.32.0',
  authorityKeyIdentifier: '2.5.29.35',
  sha1WithRsa: '1.2.840.113549.1.1.5',
} as const;

/** Signature algorithms accepted on certificates below the anchor (RSA PKCS#1 v1.5, SHA-2). */
const SHA2_RSA = new Set(['1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13']);

/**
 * Extensions this module (or the login checks after it) understands, so may be critical:
 * key identifiers, keyUsage, basicConstraints, certificatePolicies, subjectDirectoryAttributes
 * (the ID's last four), extKeyUsage, subjectAltName, CRL distribution points, AIA.
 */
const UNDERSTOOD = new Set([
  '2.5.29.14',
  '2.5.29.35',
  '2.5.29.15',
  '2.5.29.19',
  '2.5.29.32',
  '2.5.29.9',
  '2.5.29.37',
  '2.5.29.17',
  '2.5.29.31',
  '1.3.6.1.5.5.7.1.1',
]);

const MAX_DEPTH = 8;
/** keyUsage bit 5 (RFC 5280 §4.2.1.3). */
const KEY_CERT_SIGN_BIT = 5;

function extensionOf(cert: pkijs.Certificate, oid: string): pkijs.Extension | undefined {
  return cert.extensions?.find((e) => e.extnID === oid);
}

/** Subject Key Identifier; without the extension, method (1) of RFC 5280 §4.2.1.2. */
export function subjectKeyId(cert: pkijs.Certificate): Buffer {
  const ski = extensionOf(cert, OID.subjectKeyIdentifier)?.parsedValue as asn1js.OctetString | undefined;
  if (ski?.valueBlock?.valueHexView) return Buffer.from(ski.valueBlock.valueHexView);
  return createHash('sha1').update(cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
}

/** The keyIdentifier of the Authority Key Identifier extension, when present. */
export function authorityKeyId(cert: pkijs.Certificate | pkijs.CertificateRevocationList): Buffer | undefined {
  const list = cert instanceof pkijs.Certificate ? cert.extensions : cert.crlExtensions?.extensions;
  const aki = list?.find((e) => e.extnID === OID.authorityKeyIdentifier)?.parsedValue as pkijs.AuthorityKeyIdentifier | undefined;
  const id = aki?.keyIdentifier?.valueBlock?.valueHexView;
  return id ? Buffer.from(id) : undefined;
}

function namesEqual(a: pkijs.RelativeDistinguishedNames, b: pkijs.RelativeDistinguishedNames): boolean {
  return Buffer.from(a.toSchema().toBER(false)).equals(Buffer.from(b.toSchema().toBER(false)));
}

/** Whether `issuer` could have issued `subject`: names chain and, when `subject` has an AKI, it is the issuer's key id. */
export function mayHaveIssued(issuer: pkijs.Certificate, subject: pkijs.Certificate | pkijs.CertificateRevocationList): boolean {
  if (!namesEqual(subject.issuer, issuer.subject)) return false;
  const aki = authorityKeyId(subject);
  return aki === undefined || aki.equals(subjectKeyId(issuer));
}

const x509Cache = new WeakMap<Buffer, X509Certificate>();
function x509(c: ParsedCertificate): X509Certificate {
  let x = x509Cache.get(c.der);
  if (!x) {
    x = new X509Certificate(c.der);
    x509Cache.set(c.der, x);
  }
  return x;
}

function signedBy(subject: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return x509(subject).verify(x509(issuer).publicKey);
  } catch {
    return false;
  }
}

function validAt(cert: pkijs.Certificate, now: Date): boolean {
  return cert.notBefore.value <= now && now <= cert.notAfter.value;
}

function basicConstraints(cert: pkijs.Certificate): pkijs.BasicConstraints | undefined {
  return extensionOf(cert, OID.basicConstraints)?.parsedValue as pkijs.BasicConstraints | undefined;
}

/** The set keyUsage bits, or undefined without the extension. */
export function keyUsageBits(cert: pkijs.Certificate): Set<number> | undefined {
  const bits = extensionOf(cert, OID.keyUsage)?.parsedValue as asn1js.BitString | undefined;
  return bits ? decodeNamedBits(bits) : undefined;
}

export function policiesOf(cert: pkijs.Certificate): string[] {
  const policies = extensionOf(cert, OID.certificatePolicies)?.parsedValue as pkijs.CertificatePolicies | undefined;
  return policies?.certificatePolicies.map((p) => p.policyIdentifier) ?? [];
}

/** Depth-first search for a chain of verified signatures ending at an anchor. */
function search(
  current: ParsedCertificate,
  options: PathOptions,
  pool: readonly ParsedCertificate[],
  path: ParsedCertificate[],
): ParsedCertificate[] | undefined {
  if (options.trustAnchors.some((a) => a.der.equals(current.der))) return path;
  if (path.length > MAX_DEPTH) return undefined;
  const anchors = options.trustAnchors.filter((a) => mayHaveIssued(a.certificate, current.certificate));
  const cas = pool.filter((c) => !path.some((p) => p.der.equals(c.der)) && mayHaveIssued(c.certificate, current.certificate));
  // Anchors first, then CAs valid now, so the first path found is normally the one wanted.
  const candidates = [...anchors, ...cas.sort((a, b) => Number(validAt(b.certificate, options.now)) - Number(validAt(a.certificate, options.now)))];
  for (const issuer of candidates) {
    if (!signedBy(current, issuer)) continue;
    if (anchors.includes(issuer)) return [...path, issuer];
    const found = search(issuer, options, pool, [...path, issuer]);
    if (found) return found;
  }
  return undefined;
}

function describeCertificate(cert: pkijs.Certificate): string {
  return `${new X509Certificate(Buffer.from(cert.toSchema(true).toBER(false))).subject.replace(/\n/g, ', ')} (serial ${Buffer.from(cert.serialNumber.valueBlock.valueHexView).toString('hex').toUpperCase()})`;
}

/**
 * Builds and checks the path from `subject` to a trust anchor; returns it subject first,
 * anchor last. Throws {@link VerifyError}: `UntrustedCertificate` (no path of valid signatures
 * and CA constraints), `UnsupportedAlgorithm` (SHA-1 or a non-RSA signature below the anchor),
 * `CertificateExpired` (a certificate on the path is outside its validity at `now`),
 * `WrongPolicy` (the required policy is missing).
 */
export async function buildCertificatePath(subject: ParsedCertificate, options: PathOptions): Promise<ParsedCertificate[]> {
  if (options.trustAnchors.length === 0) throw new VerifyError('UntrustedCertificate', 'No trust anchors are configured');
  const pool = (options.intermediates ?? []).filter((c) => !c.der.equals(subject.der));
  const path = search(subject, options, pool, [subject]);
  if (!path) {
    const aki = authorityKeyId(subject.certificate);
    throw new VerifyError(
      'UntrustedCertificate',
      `No configured CA issued this certificate${aki ? ` (its Authority Key Identifier is ${aki.toString('hex').toUpperCase()})` : ''}`,
    );
  }
  const below = path.slice(0, -1); // everything but the anchor
  for (const cert of below) {
    const algorithm = cert.certificate.signatureAlgorithm.algorithmId;
    if (!SHA2_RSA.has(algorithm) && !(algorithm === OID.sha1WithRsa && options.allowSha1)) {
      throw new VerifyError('UnsupportedAlgorithm', `${describeCertificate(cert.certificate)} is signed with ${algorithm}; only RSA with SHA-2 is accepted`);
    }
    const unknown = cert.certificate.extensions?.find((e) => e.critical && !UNDERSTOOD.has(e.extnID));
    if (unknown) throw new VerifyError('UntrustedCertificate', `${describeCertificate(cert.certificate)} has an unknown critical extension ${unknown.extnID}`);
  }
  // Every issuer below the anchor must be a CA allowed to sign certificates at its depth.
  for (let i = 1; i < below.length; i++) {
    const ca = below[i]!.certificate;
    const bc = basicConstraints(ca);
    if (!bc?.cA) throw new VerifyError('UntrustedCertificate', `${describeCertificate(ca)} issued a certificate but is not a CA`);
    const usage = keyUsageBits(ca);
    if (usage && !usage.has(KEY_CERT_SIGN_BIT)) throw new VerifyError('UntrustedCertificate', `${describeCertificate(ca)} may not sign certificates (keyUsage lacks keyCertSign)`);
    const cAsBelow = i - 1;
    const pathLen = typeof bc.pathLenConstraint === 'number' ? bc.pathLenConstraint : undefined;
    if (pathLen !== undefined && cAsBelow > pathLen) {
      throw new VerifyError('UntrustedCertificate', `${describeCertificate(ca)} allows ${pathLen} CA(s) below it, the path has ${cAsBelow}`);
    }
  }
  for (const cert of path) {
    if (validAt(cert.certificate, options.now)) continue;
    const { notBefore, notAfter } = cert.certificate;
    const what = cert === subject ? 'the certificate' : `the CA certificate ${describeCertificate(cert.certificate)}`;
    const why =
      notAfter.value < options.now ? `${what} expired at ${notAfter.value.toISOString()}` : `${what} is not valid before ${notBefore.value.toISOString()}`;
    throw new VerifyError('CertificateExpired', `At ${options.now.toISOString()} ${why}`);
  }
  const required = options.requiredPolicies ?? [];
  if (required.length > 0) {
    const asserted = policiesOf(subject.certificate).filter((p) => required.includes(p));
    if (asserted.length === 0) {
      const has = policiesOf(subject.certificate);
      throw new VerifyError('WrongPolicy', `The certificate asserts ${has.length ? has.join(', ') : 'no policy'}; required: ${required.join(' or ')}`);
    }
    for (const cert of below.slice(1)) {
      const has = policiesOf(cert.certificate);
      if (!has.includes(OID.anyPolicy) && !asserted.some((p) => has.includes(p))) {
        throw new VerifyError('WrongPolicy', `The CA certificate ${describeCertificate(cert.certificate)} does not assert ${asserted.join(' or ')}`);
      }
    }
  }
  return path;
}
