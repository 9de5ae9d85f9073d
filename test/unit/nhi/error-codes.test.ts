import { CardBridgeError, type ErrorCode, type ErrorStage } from '../../../src/errors.js';
import { NHI_ERROR_MEANINGS, nhiErrorCode } from '../../../src/server/nhi/error-codes.js';
import { SamClientError, type SamStep } from '../../../src/remote/nhi-sam/sam-client.js';

const e = (code: ErrorCode, stage?: ErrorStage) => new CardBridgeError(code, 'x', stage === undefined ? {} : { stage });

describe('NHI numeric error codes (edge mapping)', () => {
  it.each<[ErrorCode, ErrorStage | undefined, string]>([
    ['NoService', undefined, '7001'],
    ['Unavailable', undefined, '7001'],
    ['NoReader', undefined, '7002'],
    ['SharingViolation', undefined, '7003'],
    ['Busy', undefined, '7003'],
    ['NoCard', undefined, '7004'],
    ['CardRemoved', 'basic-data', '7004'],
    ['WrongCard', 'select', '7004'],
    ['UnsupportedCard', 'basic-data', '8010'],
    ['CardError', 'basic-data', '8010'],
    ['ProtocolError', 'basic-data', '8011'],
    ['ProtocolError', 'card-status', '8011'],
    ['CardError', undefined, '8010'],
    ['TransportError', 'basic-data', '8013'],
    ['Timeout', undefined, '8013'],
    ['SamUnavailable', undefined, '4061'],
  ])('GetBasic: %s (stage %s) → %s', (code, stage, expected) => {
    expect(nhiErrorCode(e(code, stage), 'GetBasic')).toBe(expected);
  });

  it.each<[ErrorCode, ErrorStage | undefined, string]>([
    ['CardError', 'card-id', '8001'],
    ['ProtocolError', 'card-id', '8001'],
    ['CardError', 'challenge', '8002'],
    ['CardError', 'mutual-auth', '8006'],
    ['ProtocolError', 'mutual-auth', '8006'],
    ['CardError', 'select', '7004'],
    ['CardError', undefined, '8013'],
    ['InvalidInput', undefined, '9999'],
    ['NoCard', undefined, '7004'],
  ])('H_Sign: %s (stage %s) → %s', (code, stage, expected) => {
    expect(nhiErrorCode(e(code, stage), 'H_Sign')).toBe(expected);
  });

  it('password functions: bad input is 8009', () => {
    expect(nhiErrorCode(e('InvalidInput'), 'EnCrypt')).toBe('8009');
    expect(nhiErrorCode(e('PinLength'), 'EnCrypt')).toBe('8009');
    expect(nhiErrorCode(e('CardError', 'card-id'), 'EnCrypt')).toBe('8001');
  });

  // The working peer's table (specs/nhi-card.md, H_Sign section): one number per step, whatever the reason.
  it.each<[SamStep, string]>([
    ['connect', '4061'],
    ['key-generation', '8300'],
    ['key-export', '8301'],
    ['hello-send', '8306'],
    ['hello-receive', '8305'],
    ['nonce-encrypt', '8303'],
    ['nonce-send', '8304'],
    ['auth-send', '8003'],
    ['auth-receive', '8005'],
    ['sign-send', '8007'],
    ['sign-receive', '8008'],
  ])('SAM step %s → %s', (step, code) => {
    for (const reason of ['closed', 'timeout', 'malformed', 'decrypt'] as const) {
      expect(nhiErrorCode(new SamClientError(step, reason, 'x'), 'H_Sign')).toBe(code);
    }
    expect(NHI_ERROR_MEANINGS[code]).toBeDefined();
  });

  it('our choices where the peer is silent', () => {
    // A refusal of message 03 is the SAM not accepting the card's answer: the official 8006.
    expect(nhiErrorCode(new SamClientError('sign-receive', 'rejected', 'x'), 'H_Sign')).toBe('8006');
    // A SAM refusal of message 01 is just an unusable 02.
    expect(nhiErrorCode(new SamClientError('auth-receive', 'rejected', 'x'), 'H_Sign')).toBe('8005');
    // Anything else raised as SamError without the client's detail still lands in the SAM range.
    expect(nhiErrorCode(e('SamError'), 'H_Sign')).toBe('8003');
    // The card refusing the SAM's data, or answering other than 16 bytes, is 8006 (the peer's "card answer not 16 bytes").
    expect(nhiErrorCode(e('CardError', 'mutual-auth'), 'H_Sign')).toBe('8006');
    expect(nhiErrorCode(e('ProtocolError', 'mutual-auth'), 'H_Sign')).toBe('8006');
  });

  it('foreign exceptions become a card-access failure, and every code has a meaning', () => {
    expect(nhiErrorCode(new Error('boom'), 'GetBasic')).toBe('8013');
    const all = new Set<string>();
    const codes: ErrorCode[] = ['NoService', 'NoReader', 'NoCard', 'WrongCard', 'UnsupportedCard', 'CardRemoved', 'CardError', 'TransportError', 'ProtocolError', 'PinIncorrect', 'PinBlocked', 'PinLength', 'Cancelled', 'NotAllowedOrigin', 'Busy', 'Timeout', 'SharingViolation', 'InvalidInput', 'Unavailable', 'SamUnavailable', 'SamError'];
    for (const code of codes) for (const op of ['GetBasic', 'H_Sign'] as const) all.add(nhiErrorCode(e(code), op));
    for (const code of all) expect(NHI_ERROR_MEANINGS[code]).toBeDefined();
  });
});

describe('error stages are a closed, typed list', () => {
  it('refuses a stage no layer defines (checked by the compiler: npm run typecheck)', () => {
    // @ts-expect-error — 'no-such-step' is not an ErrorStage
    const error = new CardBridgeError('CardError', 'x', { stage: 'no-such-step' });
    expect(nhiErrorCode(e('CardError', 'card-id'), 'H_Sign')).toBe('8001');
    expect(error.stage).toBe('no-such-step'); // the runtime keeps what it is given; the type system refuses it
  });
});
