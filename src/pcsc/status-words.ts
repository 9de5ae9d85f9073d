import { CardBridgeError } from '../errors.js';
import { type ResponseApdu, swHex } from './apdu.js';

/** ISO 7816-4 meanings, for messages a person can read. */
const MEANINGS: Record<number, string> = {
  0x6281: 'part of returned data may be corrupted',
  0x6282: 'end of file reached before reading Le bytes',
  0x6700: 'wrong length',
  0x6881: 'logical channel not supported',
  0x6882: 'secure messaging not supported',
  0x6982: 'security status not satisfied',
  0x6983: 'authentication method blocked',
  0x6984: 'reference data not usable',
  0x6985: 'conditions of use not satisfied',
  0x6986: 'command not allowed (no current EF)',
  0x6987: 'expected secure messaging data objects missing',
  0x6988: 'incorrect secure messaging data objects',
  0x6a80: 'incorrect parameters in the data field',
  0x6a81: 'function not supported',
  0x6a82: 'file or application not found',
  0x6a83: 'record not found',
  0x6a86: 'incorrect parameters P1-P2',
  0x6a88: 'referenced data not found',
  0x6b00: 'wrong parameters P1-P2',
  0x6d00: 'instruction not supported',
  0x6e00: 'class not supported',
  0x6f00: 'no precise diagnosis',
};

export function describeStatusWord(sw: number): string {
  if ((sw & 0xfff0) === 0x63c0) return `verification failed, ${sw & 0x0f} tries left`;
  if ((sw & 0xff00) === 0x6100) return `${sw & 0xff || 256} more bytes available`;
  if ((sw & 0xff00) === 0x6c00) return `wrong Le, ${sw & 0xff || 256} bytes available`;
  return MEANINGS[sw] ?? 'unknown status';
}

/**
 * Turns a failing status word into the project's vocabulary. PIN-related words become their
 * own codes so every edge can report tries left; the rest are `CardError` carrying the word.
 */
export function statusWordError(sw: number, operation: string): CardBridgeError {
  const text = `${operation} failed: ${swHex(sw)} (${describeStatusWord(sw)})`;
  if ((sw & 0xfff0) === 0x63c0) {
    const triesLeft = sw & 0x0f;
    return new CardBridgeError(
      triesLeft === 0 ? 'PinBlocked' : 'PinIncorrect',
      triesLeft === 0 ? `${operation}: the PIN is now blocked` : `${operation}: wrong PIN, ${triesLeft} tries left`,
      { sw, triesLeft },
    );
  }
  if (sw === 0x6983) return new CardBridgeError('PinBlocked', `${operation}: the PIN is blocked`, { sw, triesLeft: 0 });
  return new CardBridgeError('CardError', text, { sw });
}

/** Returns the response data when the card answered 90 00, else throws the mapped error. */
export function expectSuccess(response: ResponseApdu, operation: string): Buffer {
  if (response.sw !== 0x9000) throw statusWordError(response.sw, operation);
  return response.data;
}
