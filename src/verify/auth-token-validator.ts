import { createHash } from 'node:crypto';
import {
  type CertificateInput,
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
import { type RevocationOptions, checkRevocationOptions } from './crl.js';
import { VerifyError } from './errors.js';
import { InMemoryNonceStore, type NonceStore, issueNonceInto, spendNonce } from './nonce-store.js';
import { AuthTokenFormatError, createAuthTokenTbs, isSerializedOrigin, parseAuthToken } from './token-format.js';

/**
 * The relying site's check of a cardbridge login token (docs/api.md, "The login token").
 *
 *   const validator = new AuthTokenValidator({ trustAnchors: [grcaPem], intermediates: [moicaPem] });
 *   session.nonce = await validator.issueNonce();            // give it to the page
 *   const holder = await validator.validate(body.token, { origin: 'https://www.example.gov.tw', nonce: session.nonce });
 */

export interface AuthTokenValidatorOptions {
  /** Root CAs (PEM text with one or more certificates, or DER). At least one. */
  trustAnchors: CertificateInput | readonly CertificateInput[];
  /**
   * Issuing CAs between the roots and the card (for MOICA: the 內政部憑證管理中心 certificate
   * of each generation). The token carries only the card's certificate, so a path needs them.
   */
  intermediates?: CertificateInput | readonly CertificateInput[];
  /** Default: a new {@link InMemoryNonceStore} remembering nonces for 2 × maxAgeMs. */
  nonceStore?: NonceStore;
  /** How long an issued nonce stays usable; default 5 minutes. */
  maxAgeMs?: number;
  /** Clock (tests). */
  now?: () => Date;
  /** Policy OIDs the card's certificate must assert (any one); `loadGovernmentTrust()` gives MOICA's. */
  requiredPolicies?: readonly string[];
  /** Revocation against operator-provided CRLs (docs/verify-real-certificates.md); default: not checked. */
  revocation?: RevocationOptions;
}

export interface ValidateExpectations {
  /** This site's own origin, e.g. `https://www.example.gov.tw` — never one taken from the request. */
  origin: string;
  /** The nonce this back end issued for this login (from the session, not from the page). */
  nonce: string;
}

/**
 * Who logged in. There is no `cardSerial`: the card's own serial number (e.g. TP03…) is in the
 * card's files, not in the certificate, and the token carries only the certificate.
 */
export type AuthenticatedHolder = SignerFacts;

export const DEFAULT_MAX_AGE_MS = 5 * 60_000;

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export class AuthTokenValidator {
  readonly #trustAnchors: ParsedCertificate[];
  readonly #intermediates: ParsedCertificate[];
  readonly #store: NonceStore;
  readonly #maxAgeMs: number;
  readonly #now: () => Date;
  readonly #requiredPolicies: readonly string[];
  readonly #revocation: RevocationOptions | undefined;

  constructor(options: AuthTokenValidatorOptions) {
    this.#trustAnchors = loadCertificates(options.trustAnchors, 'trustAnchors');
    if (this.#trustAnchors.length === 0) throw new TypeError('trustAnchors: give at least one root CA certificate');
    this.#intermediates = loadCertificates(options.intermediates, 'intermediates');
    this.#maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    if (!Number.isFinite(this.#maxAgeMs) || this.#maxAgeMs <= 0) throw new RangeError('maxAgeMs must be a positive number');
    this.#store = options.nonceStore ?? new InMemoryNonceStore({ retentionMs: 2 * this.#maxAgeMs });
    this.#now = options.now ?? (() => new Date());
    this.#requiredPolicies = options.requiredPolicies ?? [];
    if (options.revocation) checkRevocationOptions(options.revocation);
    this.#revocation = options.revocation;
  }

  /** A new nonce (base64url of 32 random bytes, 43 characters), remembered with its time. */
  async issueNonce(): Promise<string> {
    return issueNonceInto(this.#store, this.#now());
  }

  /**
   * Checks a token (the object, or its JSON text) and says who signed it. Throws
   * {@link VerifyError}; the checks run in this order:
   *
   * 1. `MalformedToken` — not exactly the documented token shape;
   * 2. the nonce, consumed atomically whatever happens next, so it can never be replayed:
   *    `UnknownNonce`, `NonceReused`, `NonceExpired` (older than maxAgeMs);
   * 3. `UntrustedCertificate` — no path to a trust anchor; `UnsupportedAlgorithm` — a SHA-1
   *    signed certificate on it; `CertificateExpired` — a path, but outside a validity period at
   *    `now`; `WrongPolicy` — a required policy missing; when CRLs are configured
   *    `RevocationUnavailable`, `CertificateRevoked`, `RevocationStale` (crl.ts);
   * 4. `NotSigningCertificate` — keyUsage lacks digitalSignature, or a CA certificate;
   * 5. `BadSignature` — the signature does not verify over SHA256(origin) ‖ SHA256(nonce) of the
   *    EXPECTED origin and nonce. A token made for another origin fails here: the token does not
   *    say which origin it was made for, so `WrongOrigin` cannot be told apart and is not raised.
   */
  async validate(token: unknown, expected: ValidateExpectations): Promise<AuthenticatedHolder> {
    if (!isSerializedOrigin(expected?.origin)) {
      throw new TypeError(`expected.origin must be a serialised origin such as https://www.example.gov.tw`);
    }
    if (typeof expected.nonce !== 'string') throw new TypeError('expected.nonce must be the string this validator issued');

    // 1. shape
    let parsed;
    try {
      parsed = parseAuthToken(token);
    } catch (e) {
      if (e instanceof AuthTokenFormatError) throw new VerifyError('MalformedToken', e.message, { cause: e });
      throw e;
    }
    const certificateDer = Buffer.from(parsed.certificate, 'base64');
    const signature = Buffer.from(parsed.signature, 'base64');
    const leaf = parsePresentedCertificate(certificateDer, 'MalformedToken');
    const facts = factsOf(certificateDer, 'MalformedToken');

    // 2. nonce: from here on, this nonce is spent whatever the outcome.
    const now = this.#now();
    await spendNonce(this.#store, expected.nonce, now, this.#maxAgeMs);

    // 3. chain and validity
    await checkChain(leaf, {
      trustAnchors: this.#trustAnchors,
      intermediates: this.#intermediates,
      now,
      requiredPolicies: this.#requiredPolicies,
      ...(this.#revocation ? { revocation: this.#revocation } : {}),
    });
    // 4. key usage
    requireSigningKey(facts, 'digitalSignature');
    // 5. signature over the expected origin and nonce
    let tbs: Buffer;
    try {
      tbs = createAuthTokenTbs(expected.origin, expected.nonce);
    } catch (e) {
      // A nonce of the wrong length can only be here if the store holds one: not ours.
      throw new VerifyError('UnknownNonce', e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (!rsaPkcs1Verify(certificateDer, 'sha256', sha256(tbs), signature)) {
      throw new VerifyError('BadSignature', 'The signature does not verify for this origin and nonce with the certificate\'s key');
    }
    return signerFacts(certificateDer, facts, 'MalformedToken');
  }
}
