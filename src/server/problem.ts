import type { CardBridgeError, ErrorCode } from '../errors.js';

/**
 * The native API's edge: the error vocabulary as HTTP statuses and RFC 9457 problem JSON.
 * Legacy listeners have their own tables (HiPKI ret_code, NHI numeric codes).
 */
const STATUS: Record<ErrorCode, number> = {
  InvalidInput: 400,
  PinLength: 400,
  PinIncorrect: 403,
  NotAllowedOrigin: 403,
  PinBlocked: 423,
  LastTryNeedsConfirmation: 428,
  NoReader: 409,
  NoCard: 409,
  WrongCard: 409,
  UnsupportedCard: 409,
  CardRemoved: 409,
  Cancelled: 409,
  Busy: 503,
  SharingViolation: 503,
  NoService: 503,
  Unavailable: 503,
  CardError: 502,
  ProtocolError: 502,
  TransportError: 502,
  SamUnavailable: 502,
  SamError: 502,
  Timeout: 504,
  RateLimited: 429,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  triesLeft?: number;
  hint?: string;
}

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function problemOf(error: CardBridgeError): Problem {
  const problem: Problem = {
    type: `urn:cardbridge:problem:${error.code}`,
    title: error.code,
    status: httpStatusOf(error.code),
    code: error.code,
    detail: error.message,
  };
  if (error.triesLeft !== undefined) problem.triesLeft = error.triesLeft;
  if (error.hint !== undefined) problem.hint = error.hint;
  return problem;
}
