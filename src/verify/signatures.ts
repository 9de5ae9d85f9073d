import { createHash } from 'node:crypto';
import * as pkijs from 'pkijs';
import type { Pkcs1HashName } from '../crypto/pkcs1.js';
import {
  type CertificateInput,
  type ChainOptions,
  type ParsedCertificate,
  type SignerFacts,
  checkChain,
  factsOf,
  loadCertificates,
  parsePresentedCertificate,
  requireSigningKey,
  rsaPkcs1Verify,
  signerFacts,
} from './certificates.js';
import type { RevocationOptions } from './crl.js';
import { VerifyError } from './errors.js';

/**
 * HiPKI-style login and document checks: a PKCS#1 v1.5 signature or a CMS SignedData made by
 * a citizen certificate card (e.g. through `POST /v1/moica/sign`), verified against the relying
 * site's trust anchors. Unlike the login token these carry no origin or nonce binding: the site
 * must compare the signed data with the challenge it issued itself, and make that single-use.
 * Errors are {@link VerifyError}s; malformed input is `MalformedToken` (the vocabulary's
 * "does not have the documented shape").
 */

export type SignatureHash = Pkcs1HashName;

export interface TrustOptions {
  /** Root CAs (PEM with one or more certificates, or DER). */
  trustAnchors: CertificateInput | readonly CertificateInput[];
  /** Issuing CAs, when the signature does not carry them. */
  intermediates?: CertificateInput | readonly CertificateInput[];
  /** When to judge validity; default now. */
  now?: Date;
  /** Accept SHA-1 (legacy pages; also SHA-1-signed certificates below the anchor); default false. */
  allowSha1?: boolean;
  /**
   * Policy OIDs the certificate must assert (any one); e.g. `loadGovernmentTrust().requiredPolicies`.
   * Default: none.
   */
  requiredPolicies?: readonly string[];
  /** Revocation against operator-provided CRLs (crl.ts); default: not checked. */
  revocation?: RevocationOptions;
}

/** Bytes, or text: PEM or base64. */
export type Bytes = Uint8Array | string;

export interface Pkcs1VerifyOptions extends TrustOptions {
  /** The signed data; or give `digest`. */
  data?: Uint8Array;
  /** Its digest under `hash`. */
  digest?: Uint8Array;
  hash: SignatureHash;
  /** The signature: bytes, or base64 text. */
  signature: Bytes;
  /** The signer's certificate: DER bytes, base64 DER, or PEM. */
  certificate: Bytes;
}

export interface CmsVerifyOptions extends TrustOptions {
  /** DER ContentInfo(SignedData), or its base64 / PEM text. */
  cms: Bytes;
  /**
   * The content of a detached signature. For an attached one it is optional and, when given,
   * must equal the encapsulated content.
   */
  content?: Uint8Array;
}

export interface CmsSignerFacts extends SignerFacts {
  /** The content that was signed (encapsulated, or the detached `content` given). */
  content: Buffer;
  hash: SignatureHash;
  detached: boolean;
  /** The signingTime attribute, when present (claimed by the signer's computer, not proven). */
  signingTime?: Date;
}

const HASH_BY_OID: Record<string, SignatureHash> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const DIGEST_LENGTH: Record<SignatureHash, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  signingTime: '1.2.840.113549.1.9.5',
  rsaFamily: '1.2.840.113549.1.1.',
} as const;

function malformed(message: string, cause?: unknown): VerifyError {
  return new VerifyError('MalformedToken', message, cause === undefined ? undefined : { cause });
}

export function checkHash(hash: unknown, allowSha1: boolean | undefined): SignatureHash {
  if (typeof hash !== 'string' || !Object.prototype.hasOwnProperty.call(DIGEST_LENGTH, hash)) {
    throw new VerifyError('UnsupportedAlgorithm', `Unsupported hash ${JSON.stringify(hash)}; use sha256, sha384 or sha512`);
  }
  if (hash === 'sha1' && !allowSha1) throw new VerifyError('UnsupportedAlgorithm', 'SHA-1 signatures are refused (allowSha1: true accepts them)');
  return hash as SignatureHash;
}

/** Bytes as given; text as PEM (any label) or base64. */
export function bytesOf(value: Bytes, what: string): Buffer {
  if (value instanceof Uint8Array) return Buffer.from(value);
  if (typeof value !== 'string') throw malformed(`${what} must be bytes or base64 text`);
  const pem = /-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/.exec(value);
  const text = (pem ? pem[1]! : value).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0 || text.length === 0) throw malformed(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** Chain options from trust options: configured certificates parsed, policy and revocation passed on. */
export function chainOptions(options: TrustOptions, extraIntermediates: ParsedCertificate[] = []): ChainOptions {
  const out: ChainOptions = {
    trustAnchors: loadCertificates(options.trustAnchors, 'trustAnchors'),
    intermediates: [...loadCertificates(options.intermediates, 'intermediates'), ...extraIntermediates],
    now: options.now ?? new Date(),
  };
  if (options.allowSha1) out.allowSha1 = true;
  if (options.requiredPolicies) out.requiredPolicies = options.requiredPolicies;
  if (options.revocation) out.revocation = options.revocation;
  return out;
}

async function checkSigner(
  der: Buffer,
  leaf: ParsedCertificate,
  options: TrustOptions,
  extraIntermediates: ParsedCertificate[] = [],
  accept: 'digitalSignature' | 'digitalSignatureOrNonRepudiation' = 'digitalSignatureOrNonRepudiation',
): Promise<SignerFacts & { path: ParsedCertificate[] }> {
  const facts = factsOf(der, 'MalformedToken');
  const path = await checkChain(leaf, chainOptions(options, extraIntermediates));
  requireSigningKey(facts, accept);
  return { ...signerFacts(der, facts, 'MalformedToken'), path };
}

export interface VerifyCertificateOptions extends TrustOptions {
  /** Which key usage makes it acceptable; default digitalSignature or nonRepudiation. */
  keyUsage?: 'digitalSignature' | 'digitalSignatureOrNonRepudiation';
}

/**
 * Checks a citizen certificate alone — path to a trust anchor chosen by key identifier,
 * validity, policy, revocation, a signing key usage — and says whose it is. The signature
 * checks below call the same steps; use this for a certificate obtained some other way.
 */
export async function verifyCertificate(
  certificate: Bytes,
  options: VerifyCertificateOptions,
): Promise<SignerFacts & { path: ParsedCertificate[] }> {
  const der = bytesOf(certificate, 'certificate');
  const leaf = parsePresentedCertificate(der, 'MalformedToken');
  return checkSigner(der, leaf, options, [], options.keyUsage);
}

/**
 * Verifies an RSASSA-PKCS1-v1_5 signature (`format: pkcs1` of `POST /v1/moica/sign`) and the
 * signer's certificate: chain to a trust anchor, validity at `now`, a signing key usage.
 */
export async function verifyPkcs1Signature(options: Pkcs1VerifyOptions): Promise<SignerFacts> {
  const hash = checkHash(options.hash, options.allowSha1);
  if ((options.data === undefined) === (options.digest === undefined)) throw malformed('Give the data or its digest (exactly one)');
  let digest: Buffer;
  if (options.data !== undefined) {
    if (!(options.data instanceof Uint8Array)) throw malformed('data must be bytes');
    digest = createHash(hash).update(options.data).digest();
  } else {
    if (!(options.digest instanceof Uint8Array)) throw malformed('digest must be bytes');
    digest = Buffer.from(options.digest);
    if (digest.length !== DIGEST_LENGTH[hash]) throw malformed(`A ${hash} digest is ${DIGEST_LENGTH[hash]} bytes, got ${digest.length}`);
  }
  const der = bytesOf(options.certificate, 'certificate');
  const signature = bytesOf(options.signature, 'signature');
  const leaf = parsePresentedCertificate(der, 'MalformedToken');
  const { path: _path, ...signer } = await checkSigner(der, leaf, options);
  if (!rsaPkcs1Verify(der, hash, digest, signature)) throw new VerifyError('BadSignature', 'The signature does not verify with the certificate\'s key');
  return signer;
}

export function parseSignedData(der: Buffer): pkijs.SignedData {
  let info: pkijs.ContentInfo;
  try {
    info = pkijs.ContentInfo.fromBER(der);
  } catch (e) {
    throw malformed('cms is not a DER ContentInfo', e);
  }
  if (info.contentType !== OID.signedData) throw malformed(`cms holds ${info.contentType}, not SignedData`);
  try {
    return new pkijs.SignedData({ schema: info.content });
  } catch (e) {
    throw malformed('cms holds an unreadable SignedData', e);
  }
}

function signingTimeOf(signerInfo: pkijs.SignerInfo): Date | undefined {
  const attribute = signerInfo.signedAttrs?.attributes.find((a) => a.type === OID.signingTime);
  const value = attribute?.values[0] as { toDate?: () => Date } | undefined;
  return typeof value?.toDate === 'function' ? value.toDate() : undefined;
}

/**
 * Verifies a CMS SignedData (`format: cms` of `POST /v1/moica/sign`, or a HiPKI page's
 * signature): exactly one RSA signer, id-data content, message digest and signature (pkijs
 * `SignedData.verify`), then the signer's certificate — chain through the caller's
 * intermediates and the certificates inside the CMS to a trust anchor, validity at `now`, a
 * signing key usage. The content is returned: compare it with the challenge you issued.
 */
export async function verifyCmsSignedData(options: CmsVerifyOptions): Promise<CmsSignerFacts> {
  const signed = parseSignedData(bytesOf(options.cms, 'cms'));
  if (signed.signerInfos.length !== 1) throw malformed(`cms has ${signed.signerInfos.length} signers; exactly one is supported`);
  const signerInfo = signed.signerInfos[0]!;
  if (signed.encapContentInfo.eContentType !== OID.data) {
    throw malformed(`cms signs content of type ${signed.encapContentInfo.eContentType}, not id-data`);
  }
  const hash = HASH_BY_OID[signerInfo.digestAlgorithm.algorithmId];
  if (!hash) throw new VerifyError('UnsupportedAlgorithm', `Unsupported digest algorithm ${signerInfo.digestAlgorithm.algorithmId}`);
  checkHash(hash, options.allowSha1);
  // rsaEncryption (what cards emit) or an RSA signature OID (sha256WithRSAEncryption, …)
  if (!signerInfo.signatureAlgorithm.algorithmId.startsWith(OID.rsaFamily)) {
    throw new VerifyError('UnsupportedAlgorithm', `Unsupported signature algorithm ${signerInfo.signatureAlgorithm.algorithmId}`);
  }

  const eContent = signed.encapContentInfo.eContent;
  const attached = eContent ? Buffer.from(eContent.getValue()) : undefined;
  const given = options.content === undefined ? undefined : Buffer.from(options.content);
  if (!attached && !given) throw malformed('The signature is detached: give its content');
  if (attached && given && !attached.equals(given)) throw new VerifyError('BadSignature', 'The signed content differs from the content given');
  const content = (attached ?? given)!;

  let result: pkijs.SignedDataVerifyResult;
  try {
    result = await signed.verify({
      signer: 0,
      ...(attached ? {} : { data: new Uint8Array(content).buffer }),
      checkChain: false,
      extendedMode: true,
      checkDate: options.now ?? new Date(),
    });
  } catch (e) {
    const error = e as Partial<pkijs.SignedDataVerifyResult> & { message?: string };
    if (error.signerCertificate === null || error.signerCertificate === undefined) {
      throw malformed(`cms: ${error.message ?? String(e)}`, e);
    }
    throw new VerifyError('BadSignature', `cms: ${error.message ?? String(e)}`, { cause: e });
  }
  if (!result.signatureVerified || !result.signerCertificate) throw new VerifyError('BadSignature', 'The CMS signature does not verify with the signer\'s key');

  const der = Buffer.from(result.signerCertificate.toSchema(true).toBER(false));
  const leaf = parsePresentedCertificate(der, 'MalformedToken');
  const carried = (signed.certificates ?? [])
    .filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate)
    .map((c) => ({ der: Buffer.from(c.toSchema(true).toBER(false)), certificate: c }))
    .filter((c) => !c.der.equals(der));
  const { path: _path, ...signer } = await checkSigner(der, leaf, options, carried);
  const out: CmsSignerFacts = { ...signer, content, hash, detached: !attached };
  const signingTime = signingTimeOf(signerInfo);
  if (signingTime) out.signingTime = signingTime;
  return out;
}
