import { type ErrorStage, asCardBridgeError } from '../../errors.js';
import { SamClientError, type SamStep } from '../../remote/nhi-sam/sam-client.js';

/**
 * The ONE place where cardbridge's error vocabulary becomes the official NHI agent's numeric
 * codes (specs/nhi-agent-protocols.md, "Error codes"). Drivers and services never see these
 * numbers.
 *
 * The official table names ranges ("8003–8005, 8007, 8008 SAM transport errors", "8300–8306
 * SAM session set-up errors") without saying which failure gets which number. For the SAM
 * relay the bridge uses the numbers of the re-implementation that works against the real SAM
 * (specs/nhi-card.md, H_Sign section: one number per step); where that table is silent the
 * choice is ours and is marked "our choice" below and in docs/nhi.md.
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
  '8003': 'SAM transport error: sending message 01 failed',
  '8005': 'SAM transport error: no usable answer 02',
  '8006': 'card reply could not be authenticated',
  '8007': 'SAM transport error: sending message 03 failed',
  '8008': 'SAM transport error: no usable answer 04',
  '8009': 'invalid password length',
  '8010': 'basic data read failed (card refused)',
  '8011': 'basic data read failed (bad data)',
  '8013': 'cannot access card',
  '8201': 'service error',
  '8300': 'SAM session set-up: RSA key generation failed',
  '8301': 'SAM session set-up: RSA key export failed',
  '8303': "SAM session set-up: encrypting the nonce to the SAM's key failed",
  '8304': 'SAM session set-up: sending the nonce failed',
  '8305': 'SAM session set-up: no usable hello answer',
  '8306': 'SAM session set-up: sending the hello failed',
  '9999': 'unknown command',
};

/**
 * The peer's number for each step (specs/nhi-card.md). Which reason (closed, timeout, garbage)
 * made a step fail does not change its number; a timeout waiting for an answer is a failure to
 * receive it (our choice: the peer's table does not list timeouts).
 */
const SAM_STEP_CODES: Record<SamStep, string> = {
  connect: '4061',
  'key-generation': '8300',
  'key-export': '8301',
  'hello-send': '8306',
  'hello-receive': '8305',
  'nonce-encrypt': '8303',
  'nonce-send': '8304',
  'auth-send': '8003',
  'auth-receive': '8005',
  'sign-send': '8007',
  'sign-receive': '8008',
  // Our choice: the diagnostic health check is never part of a login, so this number is never
  // sent to a page; it stays in the set-up range should a caller map one.
  health: '8306',
};

function samCode(error: SamClientError): string {
  // Our choice: a well-formed refusal of message 03 (04 with a code other than OK) means the SAM
  // did not accept the card's answer, which is the official meaning of 8006; anything else
  // wrong with 04 is the peer's 8008.
  if (error.step === 'sign-receive' && error.reason === 'rejected') return '8006';
  return SAM_STEP_CODES[error.step];
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
      // Our choice: a SAM failure without the client's step detail lands on the first relay step.
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
    case 'LastTryNeedsConfirmation': // NHI card operations take no PIN; listed so the map stays total
    case 'Cancelled':
    case 'NotAllowedOrigin':
    case 'RateLimited':
      return NHI_SERVICE_ERROR;
  }
}
