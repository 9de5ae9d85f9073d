/**
 * Why a relying site refuses a login token or a signature. One code per check, so a back end
 * can log precisely and show the user something sensible; never show `message` as proof of
 * anything to a third party.
 */
export type VerifyErrorCode =
  | 'MalformedToken' // the token (or signature input) does not have the documented shape
  | 'UntrustedCertificate' // no valid path from the certificate to a configured trust anchor
  | 'CertificateExpired' // a valid path exists, but a certificate on it is outside its validity
  | 'NotSigningCertificate' // the key may not make signatures (keyUsage), or is a CA's
  | 'BadSignature' // the signature does not verify (for the token: over the expected origin and nonce)
  | 'WrongOrigin' // reserved: a wrong origin is indistinguishable from BadSignature (see docs/api.md)
  | 'UnknownNonce' // the nonce was never issued by this validator's store (or was forgotten)
  | 'NonceReused' // the nonce was already presented once
  | 'NonceExpired' // the nonce is older than maxAgeMs
  | 'UnsupportedAlgorithm' // a hash or signature algorithm this library refuses (e.g. SHA-1 by default)
  | 'WrongPolicy' // the certificate (or a CA on its path) does not assert a required certificate policy
  | 'CertificateRevoked' // a certificate on the path is listed in its issuer's CRL
  | 'RevocationUnavailable' // revocation is required but no usable CRL (right issuer, valid signature) is loaded
  | 'RevocationStale' // the only usable CRL is past its nextUpdate (plus the allowed grace)
  | 'ChallengeMismatch' // a legacy signature is valid but over other content than the challenge issued
  | 'InvalidIdNumber' // the typed national ID number is not a well-formed one (letter, 9 digits, checksum)
  | 'IdMismatch' // the typed ID number's last four differ from the certificate's (or it carries none)
  | 'InvalidBirthDate'; // the typed ROC birth date is not a real date in 民國 YYYMMDD form

export class VerifyError extends Error {
  readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VerifyError';
    this.code = code;
  }
}

export function isVerifyError(e: unknown, code?: VerifyErrorCode): e is VerifyError {
  return e instanceof VerifyError && (code === undefined || e.code === code);
}
