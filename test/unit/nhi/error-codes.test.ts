import { CardBridgeError, type ErrorCode, type ErrorStage } from '../../../src/errors.js';
import { NHI_ERROR_MEANINGS, nhiErrorCode } from '../../../src/server/nhi/error-codes.js';
import { SamClientError } from '../../../src/services/nhi/sam-client.js';

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

  it('SAM errors by step and reason', () => {
    expect(nhiErrorCode(new SamClientError('connect', 'refused', 'x'), 'H_Sign')).toBe('4061');
    expect(nhiErrorCode(new SamClientError('handshake', 'timeout', 'x'), 'H_Sign')).toBe('8301');
    expect(nhiErrorCode(new SamClientError('health', 'closed', 'x'), 'H_Sign')).toBe('8306');
    expect(nhiErrorCode(new SamClientError('authenticate', 'rejected', 'x'), 'H_Sign')).toBe('8007');
    expect(nhiErrorCode(new SamClientError('sign', 'rejected', 'x'), 'H_Sign')).toBe('8006');
    expect(nhiErrorCode(new SamClientError('sign', 'signature-length', 'x'), 'H_Sign')).toBe('8008');
    // Anything else raised as SamError without the client's detail still lands in the SAM range.
    expect(nhiErrorCode(e('SamError'), 'H_Sign')).toBe('8003');
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
