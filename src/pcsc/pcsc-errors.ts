import { CardBridgeError, type ErrorCode } from '../errors.js';

/** PC/SC return codes (winscard) that mean something a user can act on. */
const PCSC_CODES: Record<number, { code: ErrorCode; text: string }> = {
  0x8010000b: { code: 'SharingViolation', text: 'another program is using the card' },
  0x8010000c: { code: 'CardRemoved', text: 'no card in the reader' },
  0x80100069: { code: 'CardRemoved', text: 'the card was removed' },
  0x80100068: { code: 'TransportError', text: 'the card was reset by another program' },
  0x80100066: { code: 'TransportError', text: 'the card does not answer' },
  0x80100067: { code: 'TransportError', text: 'the card is not powered' },
  0x8010001d: { code: 'NoService', text: 'the smart-card service (pcscd) is not running' },
  0x8010001e: { code: 'NoService', text: 'the smart-card service (pcscd) stopped' },
  0x8010002e: { code: 'NoReader', text: 'no card reader is connected' },
  0x80100009: { code: 'NoReader', text: 'the reader is not known' },
  0x80100017: { code: 'NoReader', text: 'the reader is unavailable' },
  0x8010000a: { code: 'Timeout', text: 'the reader timed out' },
  0x8010000f: { code: 'TransportError', text: 'the card does not speak the requested protocol' },
  0x80100016: { code: 'TransportError', text: 'the connection to the card is no longer valid' },
};

/** Reads the `(0x8010000b)` tail that the pcsclite addon puts on every error message. */
export function pcscReturnCode(error: unknown): number | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const match = /\(0x([0-9a-fA-F]{8})\)/.exec(message);
  return match ? Number.parseInt(match[1]!, 16) : undefined;
}

export function mapPcscError(error: unknown, reader?: string): CardBridgeError {
  if (error instanceof CardBridgeError) return error;
  const rc = pcscReturnCode(error);
  const known = rc === undefined ? undefined : PCSC_CODES[rc];
  const raw = error instanceof Error ? error.message : String(error);
  const details = reader === undefined ? { cause: error } : { cause: error, reader };
  if (!known) return new CardBridgeError('TransportError', `PC/SC error: ${raw}`, details);
  const where = reader === undefined ? '' : ` ("${reader}")`;
  return new CardBridgeError(known.code, `${known.text[0]!.toUpperCase()}${known.text.slice(1)}${where}`, details);
}
