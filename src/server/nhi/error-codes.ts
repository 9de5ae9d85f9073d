import { type ErrorStage, asCardBridgeError } from '../../errors.js';
import { SamClientError, type SamFailureReason } from '../../services/nhi/sam-client.js';

/**
 * The ONE place where cardbridge's error vocabulary becomes the official NHI agent's numeric
 * codes (specs/nhi-agent-protocols.md, "Error codes"). Drivers and services never see these
 * numbers.
 *
 * The official table names ranges ("8003–8005, 8007, 8008 SAM transport errors", "8300–8306
 * SAM session set-up errors") without saying which failure gets which number; the bridge fixes
 * one assignment inside each documented range, below, so that every failure has exactly one
 * code and a page's retry/advice logic (which keys on the range) behaves as with the official
 * agent.
 */

/** What the page asked for; the same vocabulary error can mean different codes per request. */
export type NhiOperation = 'GetVersion' | 'GetBasic' | 'GetRandom' | 'H_Sign' | 'EnCrypt' | 'SecureGetBasic';

export const NHI_OK = '0000';
/** Unknown command or malformed request. */
export const NHI_UNKNOWN_COMMAND = '9999';
/** Service error: the bridge refused (site not allowed, rate limit) or failed in itself. */
export const NHI_SERVICE_ERROR = '8201';

export const NHI_ERROR_MEANINGS: Readonly<Record<string, string>> = {
  '4061': 'cannot reach the SAM service',
  '7001': 'PC/SC environment error',
  '7002': 'cannot access the reader',
  '7003': 'cannot access the reader (in use)',
  '7004': 'no card / applet select failed',
  '8001': 'card read error (card id)',
  '8002': 'card read error (random)',
  '8003': 'SAM transport error: connection closed',
  '8004': 'SAM transport error: no answer in time',
  '8005': 'SAM transport error: unreadable frame',
  '8006': 'card reply could not be authenticated',
  '8007': 'SAM transport error: unexpected answer',
  '8008': 'SAM transport error: bad signature length',
  '8009': 'invalid password length',
  '8010': 'basic data read failed (card refused)',
  '8011': 'basic data read failed (bad data)',
  '8013': 'cannot access card',
  '8201': 'service error',
  '8300': 'SAM session set-up: connection closed',
  '8301': 'SAM session set-up: no answer in time',
  '8302': 'SAM session set-up: unreadable frame',
  '8303': 'SAM session set-up: handshake does not decrypt',
  '8304': 'SAM session set-up: server key unusable',
  '8305': 'SAM session set-up: server nonce unusable',
  '8306': 'SAM session set-up: health check failed',
  '9999': 'unknown command',
};

/** Handshake failures → 8300–8305 (the health check that confirms the session is 8306). */
const HANDSHAKE_CODES: Record<SamFailureReason, string> = {
  refused: '4061',
  unreachable: '4061',
  closed: '8300',
  timeout: '8301',
  oversized: '8302',
  framing: '8302',
  malformed: '8302',
  decrypt: '8303',
  'server-key': '8304',
  'server-nonce': '8305',
  rejected: '8306',
  'signature-length': '8302',
};

/** Failures after the session is up (messages 01/02 and 03/04). */
const EXCHANGE_CODES: Record<SamFailureReason, string> = {
  refused: '4061',
  unreachable: '4061',
  closed: '8003',
  timeout: '8004',
  oversized: '8005',
  framing: '8005',
  decrypt: '8005',
  'server-key': '8005',
  'server-nonce': '8005',
  malformed: '8007',
  rejected: '8007', // the SAM refused the card id/challenge; for message 03 see below
  'signature-length': '8008',
};

function samCode(error: SamClientError): string {
  switch (error.step) {
    case 'connect':
      return '4061';
    case 'handshake':
      return HANDSHAKE_CODES[error.reason];
    case 'health':
      return '8306';
    case 'sign':
      // The only thing the SAM checks on message 03 is the card's answer.
      if (error.reason === 'rejected') return '8006';
      return EXCHANGE_CODES[error.reason];
    case 'authenticate':
      return EXCHANGE_CODES[error.reason];
  }
}

/** Card failures by the driver's stage (`NhiStage`) for reads that are not the basic data. */
function cardStageCode(stage: ErrorStage | undefined, isProtocol: boolean, operation: NhiOperation): string {
  switch (stage) {
    case 'select':
      return '7004';
    case 'basic-data':
    case 'card-status':
      return isProtocol ? '8011' : '8010';
    case 'card-id':
      return '8001';
    case 'challenge':
      return '8002';
    case 'mutual-auth':
      return '8006';
    default:
      return operation === 'GetBasic' ? (isProtocol ? '8011' : '8010') : '8013';
  }
}

/** The official numeric code for an error raised while serving `operation`. */
export function nhiErrorCode(e: unknown, operation: NhiOperation): string {
  if (e instanceof SamClientError) return samCode(e);
  const error = asCardBridgeError(e);
  switch (error.code) {
    case 'SamUnavailable':
      return '4061';
    case 'SamError':
      return '8003';
    case 'NoService':
    case 'Unavailable':
      return '7001';
    case 'NoReader':
      return '7002';
    case 'Busy':
    case 'SharingViolation':
      return '7003';
    case 'NoCard':
    case 'CardRemoved':
    case 'WrongCard':
      return '7004';
    case 'UnsupportedCard':
      return '8010';
    case 'CardError':
      return cardStageCode(error.stage, false, operation);
    case 'ProtocolError':
      return cardStageCode(error.stage, true, operation);
    case 'TransportError':
    case 'Timeout':
      return '8013';
    case 'PinLength':
      return '8009';
    case 'InvalidInput':
      return operation === 'EnCrypt' || operation === 'SecureGetBasic' ? '8009' : NHI_UNKNOWN_COMMAND;
    case 'PinIncorrect':
    case 'PinBlocked':
    case 'Cancelled':
    case 'NotAllowedOrigin':
    case 'RateLimited':
      return NHI_SERVICE_ERROR;
  }
}
