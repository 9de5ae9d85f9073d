/**
 * The one error vocabulary of cardbridge. Cards, readers and services raise these; each wire
 * format (native problem JSON, HiPKI ret_code, NHI numeric codes, CLI exit codes) translates
 * them at its own edge, so no layer below the servers knows any protocol's numbers.
 */
export type ErrorCode =
  | 'NoService' // pcscd (or the platform's smart-card service) is not reachable
  | 'NoReader'
  | 'NoCard'
  | 'WrongCard' // a card is present but not the kind the operation needs
  | 'UnsupportedCard' // the right kind of card, but a variant we cannot serve (e.g. NHI staff card)
  | 'CardRemoved'
  | 'CardError' // the card answered with a status word that means failure
  | 'TransportError' // the reader or the link to it failed
  | 'ProtocolError' // a response that does not follow ISO 7816-4 or the card's spec
  | 'PinIncorrect'
  | 'PinBlocked'
  | 'LastTryNeedsConfirmation' // the card has one try left: the PIN was not sent; the user must confirm in cardbridge's own window
  | 'PinLength'
  | 'Cancelled'
  | 'NotAllowedOrigin'
  | 'Busy'
  | 'Timeout'
  | 'SharingViolation'
  | 'InvalidInput'
  | 'Unavailable' // a feature whose dependency is missing on this machine
  | 'SamUnavailable' // a remote secure-access module (NHI's cloud SAM) cannot be reached at all
  | 'SamError' // the SAM was reached but the exchange with it failed or it refused
  | 'RateLimited'; // a site sent more requests than its share

/**
 * Which step of a multi-step operation failed, so an edge can pick its protocol's code without
 * knowing any APDU. One closed list: a new step is added here, and every edge that switches on
 * it is then checked by the compiler.
 */
export type ErrorStage =
  // NHI card driver (cards/nhi/nhi-card.ts)
  | 'select'
  | 'basic-data'
  | 'card-id'
  | 'card-status'
  | 'challenge'
  | 'mutual-auth'
  // MOICA generation 2 secure channel set-up (cards/moica/moica-gen2.ts); 'card-id' as above
  | 'key-info'
  // MOICA generation 1 protected VERIFY: the card refused the batch key (6A 88)
  | 'pin-protection-key'
  // NHI cloud SAM exchange (remote/nhi-sam/sam-client.ts): `sam-<SamStep>`
  | 'sam-connect'
  | 'sam-key-generation'
  | 'sam-key-export'
  | 'sam-hello-send'
  | 'sam-hello-receive'
  | 'sam-nonce-encrypt'
  | 'sam-nonce-send'
  | 'sam-auth-send'
  | 'sam-auth-receive'
  | 'sam-sign-send'
  | 'sam-sign-receive'
  | 'sam-health';

export interface ErrorDetails {
  triesLeft?: number;
  sw?: number;
  reader?: string;
  hint?: string;
  /** Which step of a multi-step operation failed (e.g. 'card-id'). */
  stage?: ErrorStage;
  cause?: unknown;
}

export class CardBridgeError extends Error {
  readonly code: ErrorCode;
  readonly triesLeft?: number;
  readonly sw?: number;
  readonly reader?: string;
  /** What the user can do about it, in one sentence. */
  readonly hint?: string;
  /** Which step of a multi-step operation failed (see ErrorDetails.stage). */
  readonly stage?: ErrorStage;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CardBridgeError';
    this.code = code;
    if (details.triesLeft !== undefined) this.triesLeft = details.triesLeft;
    if (details.sw !== undefined) this.sw = details.sw;
    if (details.reader !== undefined) this.reader = details.reader;
    if (details.hint !== undefined) this.hint = details.hint;
    if (details.stage !== undefined) this.stage = details.stage;
  }
}

export function isCardBridgeError(e: unknown, code?: ErrorCode): e is CardBridgeError {
  return e instanceof CardBridgeError && (code === undefined || e.code === code);
}

/** Wraps anything thrown by a dependency so callers only ever see the vocabulary above. */
export function asCardBridgeError(e: unknown, fallback: ErrorCode = 'TransportError'): CardBridgeError {
  if (e instanceof CardBridgeError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new CardBridgeError(fallback, message, { cause: e });
}
