import { X509Certificate, constants, publicDecrypt, timingSafeEqual } from 'node:crypto';
import * as pkijs from 'pkijs';
import { type CertificateFacts, certificateFacts } from '../crypto/certificate-facts.js';
import { type Pkcs1HashName, pkcs1v15SignatureBlock } from '../crypto/pkcs1.js';
import { VerifyError, type VerifyErrorCode } from './errors.js';
import { type RevocationOptions, checkRevocation } from './crl.js';
import { type ParsedCertificate, type PathOptions, buildCertificatePath } from './path.js';

/**
 * Certificates for the relying party: reading trust anchors, checking a path to one of them
 * by key identifier (path.ts), key usage, and the facts a login needs.
 */

/** A PEM text (one or more certificates), one DER certificate, or one already parsed (e.g. from loadGovernmentTrust). */
export type CertificateInput = string | Uint8Array | ParsedCertificate;

export type { ParsedCertificate };

const PEM_BLOCK = /-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----([\s\S]*?)-----END (?:X509 |TRUSTED )?CERTIFICATE-----/g;

function parseDer(der: Buffer, what: string, code: VerifyErrorCode): ParsedCertificate {
  try {
    return { der, certificate: pkijs.Certificate.fromBER(der) };
  } catch (e) {
    throw new VerifyError(code, `${what} is not a DER X.509 certificate`, { cause: e });
  }
}

/**
 * Reads configuration certificates (trust anchors, intermediates). A string must be PEM; any
 * number of CERTIFICATE blocks per string. Throws TypeError: bad configuration is a
 * programming error, not a verdict on a token.
 */
export function loadCertificates(input: CertificateInput | readonly CertificateInput[] | undefined, what: string): ParsedCertificate[] {
  if (input === undefined) return [];
  const items = Array.isArray(input) ? (input as readonly CertificateInput[]) : [input as CertificateInput];
  const out: ParsedCertificate[] = [];
  for (const item of items) {
    if (typeof item === 'string') {
      const blocks = [...item.matchAll(PEM_BLOCK)];
      if (blocks.length === 0) throw new TypeError(`${what}: a string must hold PEM CERTIFICATE blocks`);
      for (const block of blocks) out.push(parseConfigDer(Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64'), what));
    } else if (item instanceof Uint8Array) {
      out.push(parseConfigDer(Buffer.from(item), what));
    } else if (item && Buffer.isBuffer((item as ParsedCertificate).der) && (item as ParsedCertificate).certificate instanceof pkijs.Certificate) {
      out.push(item as ParsedCertificate);
    } else {
      throw new TypeError(`${what}: give PEM strings, DER bytes or parsed certificates`);
    }
  }
  return out;
}

function parseConfigDer(der: Buffer, what: string): ParsedCertificate {
  try {
    return parseDer(der, what, 'MalformedToken');
  } catch {
    throw new TypeError(`${what}: not a DER X.509 certificate`);
  }
}

/** Parses a certificate presented by the other side (token, signature): bad input is `code`. */
export function parsePresentedCertificate(der: Uint8Array, code: VerifyErrorCode = 'MalformedToken'): ParsedCertificate {
  return parseDer(Buffer.from(der), 'the certificate', code);
}

export interface ChainOptions extends PathOptions {
  /** Check revocation against these CRLs; absent: no revocation check. */
  revocation?: RevocationOptions;
}

/**
 * Checks that `leaf` chains to one of the trust anchors at `now` (path.ts: issuers chosen by
 * key identifier, signatures, CA constraints, validity, the required policy when given), then
 * revocation when CRLs are configured (crl.ts). Returns the path, leaf first.
 */
export async function checkChain(leaf: ParsedCertificate, options: ChainOptions): Promise<ParsedCertificate[]> {
  const path = await buildCertificatePath(leaf, options);
  if (options.revocation) checkRevocation(path, options.revocation, options.now);
  return path;
}

/** certificateFacts, with a malformed certificate reported as `code`. */
export function factsOf(der: Buffer, code: VerifyErrorCode = 'MalformedToken'): CertificateFacts {
  try {
    return certificateFacts(der);
  } catch (e) {
    throw new VerifyError(code, `Unreadable certificate: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/**
 * A key that may sign for a person: not a CA, keyUsage present with `digitalSignature` (login
 * tokens) or, for document signatures, `digitalSignature` or `nonRepudiation`.
 */
export function requireSigningKey(facts: CertificateFacts, accept: 'digitalSignature' | 'digitalSignatureOrNonRepudiation'): void {
  if (facts.isCa) throw new VerifyError('NotSigningCertificate', 'The certificate is a CA certificate, not a holder\'s');
  const ok =
    accept === 'digitalSignature'
      ? facts.keyUsage.includes('digitalSignature')
      : facts.keyUsage.includes('digitalSignature') || facts.keyUsage.includes('nonRepudiation');
  if (!ok) {
    const has = facts.keyUsage.length > 0 ? facts.keyUsage.join(', ') : 'no keyUsage extension';
    const needs = accept === 'digitalSignature' ? 'digitalSignature' : 'digitalSignature or nonRepudiation';
    throw new VerifyError('NotSigningCertificate', `The certificate's key is not for signing (needs ${needs}; has ${has})`);
  }
}

/**
 * RSASSA-PKCS1-v1_5 verification by re-encoding: the public operation must give exactly the
 * block a signer would have built for this digest, so no lenient parsing of the padding or the
 * DigestInfo can be abused.
 */
export function rsaPkcs1Verify(certificateDer: Buffer, hash: Pkcs1HashName, digest: Buffer, signature: Buffer): boolean {
  let key;
  try {
    key = new X509Certificate(certificateDer).publicKey;
  } catch {
    return false;
  }
  if (key.asymmetricKeyType !== 'rsa') return false;
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) return false;
  const length = Math.ceil(bits / 8);
  if (signature.length !== length) return false;
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return false; // e.g. signature ≥ modulus
  }
  let expected: Buffer;
  try {
    expected = pkcs1v15SignatureBlock(length, hash, digest);
  } catch {
    return false; // a key size or digest length PKCS#1 cannot encode
  }
  return recovered.length === expected.length && timingSafeEqual(recovered, expected);
}

/** What a relying site learns about the person behind a verified signature. */
export interface SignerFacts {
  /** Holder's name (subject CN). */
  name: string;
  /** Last four characters of the holder's national ID (2.16.886.1.100.2.51), when present. */
  idLast4?: string;
  /** Subject serialNumber (16 digits on MOICA holder certificates): the stable account key. */
  serialNumber: string;
  /** DER of the signer's certificate. */
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  issuer: string;
  /** The certificate's own serial number, upper-case hex. */
  certificateSerialNumber: string;
}

export function signerFacts(der: Buffer, facts: CertificateFacts, code: VerifyErrorCode): SignerFacts {
  if (facts.holderName === undefined || facts.subjectSerialNumber === undefined) {
    throw new VerifyError(code, 'The certificate names no holder (subject CN and serialNumber are required)');
  }
  const out: SignerFacts = {
    name: facts.holderName,
    serialNumber: facts.subjectSerialNumber,
    certificate: der,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    subject: facts.subject,
    issuer: facts.issuer,
    certificateSerialNumber: facts.serialNumber,
  };
  if (facts.idLastFour !== undefined) out.idLast4 = facts.idLastFour;
  return out;
}
