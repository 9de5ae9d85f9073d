/**
 * cardbridge/verify — the relying site's back-end library: login tokens and card signatures.
 * Node only; no dependency on the daemon.
 */
export {
  AUTH_TOKEN_ALGORITHM,
  AUTH_TOKEN_FORMAT,
  AUTH_TOKEN_VERSION,
  type AuthToken,
  AuthTokenFormatError,
  NONCE_MAX_LENGTH,
  NONCE_MIN_LENGTH,
  createAuthTokenTbs,
  isSerializedOrigin,
  isValidNonce,
  parseAuthToken,
} from './token-format.js';
export { VerifyError, type VerifyErrorCode, isVerifyError } from './errors.js';
export { InMemoryNonceStore, type InMemoryNonceStoreOptions, type NonceLookup, type NonceStore } from './nonce-store.js';
export {
  AuthTokenValidator,
  type AuthTokenValidatorOptions,
  type AuthenticatedHolder,
  DEFAULT_MAX_AGE_MS,
  type ValidateExpectations,
} from './auth-token-validator.js';
export type { CertificateInput, SignerFacts } from './certificates.js';
export {
  type CmsSignerFacts,
  type CmsVerifyOptions,
  type Pkcs1VerifyOptions,
  type SignatureHash,
  type TrustOptions,
  verifyCmsSignedData,
  verifyPkcs1Signature,
} from './signatures.js';
export { type ParsedCertificate, type PathOptions, buildCertificatePath } from './path.js';
export {
  GPKI_CERTIFICATES,
  type GovernmentTrust,
  type GovernmentTrustOptions,
  type GpkiCertificateId,
  type GpkiCertificateInfo,
  MOICA_CRL_URLS,
  MOICA_POLICY_OID,
  SHIPPED_CERTS_DIR,
  loadGovernmentTrust,
} from './gpki.js';
export {
  type CrlDirectoryOptions,
  type CrlInput,
  CrlStore,
  type LoadedCrl,
  type RevocationOptions,
  checkRevocation,
  crlSignedBy,
  parseCrl,
} from './crl.js';
export { type VerifyCertificateOptions, verifyCertificate } from './signatures.js';
export { type RocDate, matchIdNumber, normaliseIdNumber, parseRocBirthDate } from './citizen-id.js';
export {
  type LegacyLoginExpectations,
  type LegacyLoginResult,
  type LegacySignature,
  LegacyLoginVerifier,
  type LegacyLoginVerifierOptions,
} from './legacy-login.js';
export { checkNonceStoreContract } from './nonce-store-contract.js';
