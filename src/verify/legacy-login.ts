import { checkRevocationOptions } from './crl.js';
import { VerifyError } from './errors.js';
import { type RocDate, matchIdNumber, normaliseIdNumber, parseRocBirthDate } from './citizen-id.js';
import { DEFAULT_MAX_AGE_MS } from './auth-token-validator.js';
import { InMemoryNonceStore, type NonceStore, issueNonceInto, spendNonce } from './nonce-store.js';
import { type SignerFacts, loadCertificates } from './certificates.js';
import {
  type Bytes,
  type SignatureHash,
  type TrustOptions,
  bytesOf,
  checkHash,
  parseSignedData,
  verifyCmsSignedData,
  verifyPkcs1Signature,
} from './signatures.js';

/**
 * The legacy 自然人憑證 login government sites use today (specs: hipki-local-server.md): the
 * back end issues a nonce, the page has HiPKI (or cardbridge's compatible port 61161) sign it —
 * `signatureType` PKCS7 (CMS SignedData, attached or detached) or PKCS1 (plus `certb64`) — and
 * posts the signature with the ID number and ROC birth date the citizen typed.
 *
 *   const login = new LegacyLoginVerifier({ ...loadGovernmentTrust(), revocation: { crls } });
 *   session.nonce = await login.issueNonce();     // the page signs it with tbsEncoding NONE
 *   const who = await login.verify({ type: 'PKCS7', signature: body.signature },
 *                                  { nonce: session.nonce, idNumber: body.id, birthDate: body.birth });
 *
 * Unlike cardbridge's own login token, the signature does not bind the page's origin: any page
 * the citizen signs on can relay it. Prefer the native API's token where the site can.
 */

export interface LegacyLoginVerifierOptions extends Omit<TrustOptions, 'now'> {
  /** Default: a new {@link InMemoryNonceStore} remembering nonces for 2 × maxAgeMs. */
  nonceStore?: NonceStore;
  /** How long an issued nonce stays usable; default 5 minutes. */
  maxAgeMs?: number;
  /** Clock (tests). */
  now?: () => Date;
}

/** What the page posts (HiPKI's `/sign` answer: `signature`, and `certb64` for PKCS1). */
export type LegacySignature =
  | { type: 'PKCS7'; signature: Bytes }
  | { type: 'PKCS1'; signature: Bytes; certificate: Bytes; hashAlgorithm: string };

export interface LegacyLoginExpectations {
  /** The nonce this back end issued for this login (from the session, not from the page). */
  nonce: string;
  /** The ID number the citizen typed; when given it must end in the certificate's last four. */
  idNumber?: string;
  /** The ROC birth date typed (YYYMMDD); when given it must be a real past date. */
  birthDate?: string;
}

export interface LegacyLoginResult extends SignerFacts {
  signatureType: 'PKCS7' | 'PKCS1';
  /** The typed birth date, read: compare it with the site's own records (the certificate has none). */
  birthDate?: RocDate;
}

const HASH_NAMES: Readonly<Record<string, SignatureHash>> = { SHA1: 'sha1', SHA256: 'sha256', SHA384: 'sha384', SHA512: 'sha512' };

function malformed(message: string, cause?: unknown): VerifyError {
  return new VerifyError('MalformedToken', message, cause === undefined ? undefined : { cause });
}

export class LegacyLoginVerifier {
  readonly #trust: Omit<TrustOptions, 'now'>;
  readonly #store: NonceStore;
  readonly #maxAgeMs: number;
  readonly #now: () => Date;

  constructor(options: LegacyLoginVerifierOptions) {
    const { nonceStore, maxAgeMs, now, ...trust } = options;
    // Parsed once here, so a bad configuration fails at start-up, not at a citizen's login.
    const trustAnchors = loadCertificates(trust.trustAnchors, 'trustAnchors');
    if (trustAnchors.length === 0) throw new TypeError('trustAnchors: give at least one root CA certificate');
    this.#trust = { ...trust, trustAnchors, intermediates: loadCertificates(trust.intermediates, 'intermediates') };
    if (trust.revocation) checkRevocationOptions(trust.revocation);
    this.#maxAgeMs = maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (!Number.isFinite(this.#maxAgeMs) || this.#maxAgeMs <= 0) throw new RangeError('maxAgeMs must be a positive number');
    this.#store = nonceStore ?? new InMemoryNonceStore({ retentionMs: 2 * this.#maxAgeMs });
    this.#now = now ?? (() => new Date());
  }

  /** A new nonce (base64url, 43 characters) for the page to sign as its `tbs`. */
  async issueNonce(): Promise<string> {
    return issueNonceInto(this.#store, this.#now());
  }

  /**
   * Checks a legacy login. Throws {@link VerifyError}, in this order:
   * 1. before the nonce is spent (the citizen may correct and resubmit): `InvalidIdNumber`,
   *    `InvalidBirthDate`, `MalformedToken` (not a readable signature), `UnsupportedAlgorithm`;
   * 2. `UnknownNonce`, `NonceReused`, `NonceExpired` — the nonce is spent from here on;
   * 3. the signature and certificate: `BadSignature` (for PKCS#1 and detached PKCS#7 also a
   *    signature over other content), `UntrustedCertificate`, `CertificateExpired`, `WrongPolicy`,
   *    revocation codes, `NotSigningCertificate`;
   * 4. `ChallengeMismatch` — an attached PKCS#7 that signs other content than the nonce;
   * 5. `IdMismatch` — the typed ID number does not end in the certificate's last four.
   */
  async verify(submitted: LegacySignature, expected: LegacyLoginExpectations): Promise<LegacyLoginResult> {
    if (typeof expected?.nonce !== 'string') throw new TypeError('expected.nonce must be the string this verifier issued');
    const now = this.#now();
    // 1. what can be refused without spending the nonce
    if (expected.idNumber !== undefined) normaliseIdNumber(expected.idNumber);
    const birthDate = expected.birthDate === undefined ? undefined : parseRocBirthDate(expected.birthDate, now);
    const type = (submitted as { type?: unknown } | undefined)?.type;
    let hash: SignatureHash | undefined;
    if (type === 'PKCS7') {
      parseSignedData(bytesOf(submitted.signature, 'signature'));
    } else if (type === 'PKCS1') {
      const s = submitted as Extract<LegacySignature, { type: 'PKCS1' }>;
      const name = typeof s.hashAlgorithm === 'string' ? HASH_NAMES[s.hashAlgorithm.toUpperCase()] : undefined;
      if (!name) throw new VerifyError('UnsupportedAlgorithm', `Unsupported hashAlgorithm ${JSON.stringify(s.hashAlgorithm)}; use SHA256, SHA384 or SHA512`);
      hash = checkHash(name, this.#trust.allowSha1);
      bytesOf(s.signature, 'signature');
      bytesOf(s.certificate, 'certificate');
    } else {
      throw malformed(`signature type must be PKCS7 or PKCS1, not ${JSON.stringify(type)}`);
    }

    // 2. the nonce
    await spendNonce(this.#store, expected.nonce, now, this.#maxAgeMs);

    // 3. signature and certificate; 4. content
    const content = Buffer.from(expected.nonce, 'utf8');
    const trust = { ...this.#trust, now };
    let signer: SignerFacts;
    if (type === 'PKCS7') {
      const cms = bytesOf(submitted.signature, 'signature');
      const attached = parseSignedData(cms).encapContentInfo.eContent !== undefined;
      const result = await verifyCmsSignedData({ ...trust, cms, ...(attached ? {} : { content }) });
      if (!result.content.equals(content)) throw new VerifyError('ChallengeMismatch', 'The PKCS#7 signature is valid but signs other content than the nonce issued');
      const { content: _c, hash: _h, detached: _d, signingTime: _t, ...facts } = result;
      signer = facts;
    } else {
      const s = submitted as Extract<LegacySignature, { type: 'PKCS1' }>;
      signer = await verifyPkcs1Signature({ ...trust, data: content, hash: hash!, signature: s.signature, certificate: s.certificate });
    }

    // 5. the typed ID number
    if (expected.idNumber !== undefined && !matchIdNumber(expected.idNumber, signer.idLast4)) {
      throw new VerifyError(
        'IdMismatch',
        signer.idLast4 === undefined ? 'The certificate carries no ID suffix to compare with' : 'The ID number does not match the certificate (身分證字號與憑證不符)',
      );
    }
    const out: LegacyLoginResult = { ...signer, signatureType: type };
    if (birthDate) out.birthDate = birthDate;
    return out;
  }
}
