import { CardBridgeError } from '../errors.js';
import type { CardType } from '../readers/types.js';

/**
 * The APDU trace file: what `cardbridge trace` writes and the replay transport reads. One JSON
 * object a citizen can open in a text editor and send back. Bytes are upper-case hex with no
 * spaces; in commands, `**` stands for a byte the recorder removed (a PIN, or a MAC from which
 * the PIN could be recovered), and matches any byte on replay.
 */

export const TRACE_FORMAT = 'cardbridge-apdu-trace/1';

/** The hex spelling of one removed byte. */
export const REDACTED_BYTE = '**';

export interface TraceExchange {
  /** Milliseconds from the start of the recording to this command. */
  atMs: number;
  /** How long the card (and reader) took to answer. */
  durationMs: number;
  /** Command APDU as sent, hex; `**` for each redacted byte. */
  command: string;
  /** Response data ‖ SW1 SW2, hex (never wildcarded: holder data is replaced, not removed). */
  response?: string;
  /** The transmit failed instead of answering (card pulled out, reader gone). */
  error?: string;
  /** Why bytes of this exchange were changed, for the person reading the file. */
  redaction?: string;
}

/** One connection to the card: everything between taking the card and handing it back. */
export interface TraceSession {
  reader: string;
  atr: string;
  cardType: CardType;
  exclusive: boolean;
  exchanges: TraceExchange[];
}

export interface TraceOutcome {
  ok: boolean;
  /** What the operation printed as its result (never a PIN or holder data). */
  summary?: string;
  error?: { code: string; message: string };
}

export interface ApduTrace {
  format: typeof TRACE_FORMAT;
  operation: string;
  recordedAt: string;
  cardbridgeVersion: string;
  /** `pcsc` for a real reader, `virtual` for the project's virtual cards. */
  source: 'pcsc' | 'virtual';
  /** What was removed or replaced, in words. */
  privacy: string[];
  sessions: TraceSession[];
  outcome: TraceOutcome;
}

function bad(message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `Not a cardbridge APDU trace: ${message}`);
}

/** A command pattern: each byte a number, or null where the trace has `**`. */
export type BytePattern = (number | null)[];

export function parsePattern(text: string, where: string): BytePattern {
  if (text.length % 2 !== 0 || !/^([0-9A-Fa-f]{2}|\*\*)*$/.test(text)) throw bad(`${where} is not hex (with ** for removed bytes): "${text}"`);
  const bytes: BytePattern = [];
  for (let i = 0; i < text.length; i += 2) {
    const pair = text.slice(i, i + 2);
    bytes.push(pair === REDACTED_BYTE ? null : parseInt(pair, 16));
  }
  return bytes;
}

export function parseHex(text: string, where: string): Buffer {
  if (text.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(text)) throw bad(`${where} is not hex: "${text}"`);
  return Buffer.from(text, 'hex');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/** Hex as the trace spells it; `separator` ' ' gives `80 EA 02 00 ** **` for messages. */
export function patternToHex(pattern: BytePattern, separator = ''): string {
  return pattern.map((b) => (b === null ? REDACTED_BYTE : b.toString(16).toUpperCase().padStart(2, '0'))).join(separator);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a trace from its JSON text, checking every field the replay relies on. */
export function parseTrace(text: string): ApduTrace {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw bad(`the file is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(value)) throw bad('the file does not hold a JSON object');
  if (value.format !== TRACE_FORMAT) throw bad(`format is ${JSON.stringify(value.format)}, expected "${TRACE_FORMAT}"`);
  if (typeof value.operation !== 'string') throw bad('operation is missing');
  if (!Array.isArray(value.sessions)) throw bad('sessions is missing');
  value.sessions.forEach((session: unknown, s) => {
    const where = `session ${s + 1}`;
    if (!isObject(session)) throw bad(`${where} is not an object`);
    if (typeof session.atr !== 'string') throw bad(`${where} has no ATR`);
    parseHex(session.atr, `${where} ATR`);
    if (!isObject(session.cardType) || typeof session.cardType.kind !== 'string') throw bad(`${where} has no card type`);
    if (!Array.isArray(session.exchanges)) throw bad(`${where} has no exchanges`);
    session.exchanges.forEach((exchange: unknown, e) => {
      const at = `${where}, exchange ${e + 1}`;
      if (!isObject(exchange) || typeof exchange.command !== 'string') throw bad(`${at} has no command`);
      parsePattern(exchange.command, `${at} command`);
      if (typeof exchange.response === 'string') {
        const response = parseHex(exchange.response, `${at} response`);
        if (response.length < 2) throw bad(`${at} response has no status word`);
      } else if (typeof exchange.error !== 'string') {
        throw bad(`${at} has neither a response nor an error`);
      }
    });
  });
  return value as unknown as ApduTrace;
}

export function serializeTrace(trace: ApduTrace): string {
  return `${JSON.stringify(trace, null, 2)}\n`;
}
