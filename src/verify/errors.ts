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
  | 'UnsupportedAlgorithm'; // a hash or signature algorithm this library refuses (e.g. SHA-1 by default)

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
