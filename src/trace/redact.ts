import iconv from 'iconv-lite';
import { NHI_BASIC_LAYOUT } from '../cards/nhi/basic-data.js';
import { NHI_BASIC_DATA_LENGTH, NHI_CARD_ID_LENGTH } from '../cards/nhi/commands.js';
import { decodeCommand } from '../pcsc/apdu.js';
import type { BytePattern } from './trace-file.js';

/**
 * What a trace must never contain, and how it is taken out.
 *
 * PINs. Every command whose INS carries reference data (VERIFY 20/21, CHANGE REFERENCE DATA
 * 24, RESET RETRY COUNTER 2C) loses its whole data field, whatever the class: a plain VERIFY
 * carries the PIN as it is; MOICA gen 1's protected VERIFY (`8C 20`) carries it under a 3DES
 * key that is public; MOICA gen 2's VERIFY under SCP03 (`04 20`) carries it under session keys
 * anyone can derive from the card id and the challenges, which stay in the trace.
 *
 * MACs after a secure-messaging PIN. SCP03 chains each command's MAC from the one before, so
 * every later MAC of that channel is a function of the PIN: with the derivable keys, trying all
 * PINs against one of them finds it. So once a PIN went through secure messaging, the last
 * 8 bytes (the C-MAC) of every further secure-messaging command are removed until a new
 * INITIALIZE UPDATE starts a new chain. Without R-MAC (MOICA uses security level 3) responses
 * carry no MAC.
 *
 * NHI holder data. The basic data record (card number, name, ID number, birth date, sex, issue
 * date), the card id (the card number in ASCII) and the card status data after its first
 * character are replaced by fake values of the same length, so the drivers still parse them.
 */

/** INS bytes whose data field is a PIN (or a PIN block / cryptogram). */
const PIN_BEARING_INS = new Set([0x20, 0x21, 0x24, 0x2c]);
const INS_INITIALIZE_UPDATE = 0x50;
const CMAC_LENGTH = 8;

/** ISO 7816-4 class byte: does it announce secure messaging? */
export function isSecureMessaging(cla: number): boolean {
  if (cla === 0xff) return false;
  return (cla & 0x40) === 0 ? (cla & 0x0c) !== 0 : (cla & 0x20) !== 0;
}

/** Whether a command carries a PIN in any form (plain, protected or wrapped). */
export function isPinBearing(command: Uint8Array): boolean {
  return command.length >= 4 && PIN_BEARING_INS.has(command[1]!);
}

/** Where the data field sits in an encoded command; the whole body when it does not decode. */
function dataRange(command: Buffer): { start: number; end: number } {
  try {
    const decoded = decodeCommand(command);
    if (!decoded.data || decoded.data.length === 0) return { start: command.length, end: command.length };
    const start = decoded.extended ? 7 : 5; // header, then Lc in one byte or 00 ‖ two bytes
    return { start, end: start + decoded.data.length };
  } catch {
    return { start: Math.min(5, command.length), end: command.length };
  }
}

function pattern(command: Buffer, removeFrom: number, removeTo: number): BytePattern {
  return [...command].map((b, i) => (i >= removeFrom && i < removeTo ? null : b));
}

/** The fake holder every NHI trace carries instead of the real one. */
export const TRACE_FAKE_NHI_HOLDER = {
  cardNumber: '900000000009',
  /** Repeated (Big5) and cut to the real name's length. */
  name: '測試',
  idNumber: 'Z900000009',
  birthDateRoc: '0700101',
  sex: 'M',
  issueDateRoc: '1000101',
} as const;

function fakeName(length: number): Buffer {
  const unit = iconv.encode(TRACE_FAKE_NHI_HOLDER.name, 'big5hkscs');
  const out = Buffer.alloc(length, 0x20);
  for (let i = 0; i + 1 < length; i += 2) unit.copy(out, i, i % unit.length, (i % unit.length) + 2);
  return out;
}

/** Same-length fake basic data: every field replaced, the name's padding kept as it was. */
export function fakeNhiBasicData(real: Buffer): Buffer {
  if (real.length !== NHI_BASIC_DATA_LENGTH) return Buffer.alloc(real.length, 0x30);
  const out = Buffer.from(real);
  const put = (field: keyof typeof NHI_BASIC_LAYOUT, value: Buffer) => value.copy(out, NHI_BASIC_LAYOUT[field].offset);
  put('cardNumber', Buffer.from(TRACE_FAKE_NHI_HOLDER.cardNumber, 'ascii'));
  const { offset, length } = NHI_BASIC_LAYOUT.name;
  const name = real.subarray(offset, offset + length);
  let used = name.length;
  while (used > 0 && (name[used - 1] === 0x00 || name[used - 1] === 0x20)) used--;
  put('name', fakeName(used));
  put('idNumber', Buffer.from(TRACE_FAKE_NHI_HOLDER.idNumber, 'ascii'));
  put('birthDate', Buffer.from(TRACE_FAKE_NHI_HOLDER.birthDateRoc, 'ascii'));
  put('sex', Buffer.from(TRACE_FAKE_NHI_HOLDER.sex, 'ascii'));
  put('issueDate', Buffer.from(TRACE_FAKE_NHI_HOLDER.issueDateRoc, 'ascii'));
  return out;
}

function fakeCardId(real: Buffer): Buffer {
  return real.length === NHI_CARD_ID_LENGTH ? Buffer.from(TRACE_FAKE_NHI_HOLDER.cardNumber, 'ascii') : Buffer.alloc(real.length, 0x30);
}

function fakeCardStatus(real: Buffer): Buffer {
  const out = Buffer.alloc(real.length, 0x30);
  if (real.length > 0) out[0] = real[0]!; // the termination flag: a state, not a person
  return out;
}

/** NHI GET DATA reads (`00 CA P1 00`) whose answers describe the holder. */
const NHI_HOLDER_READS: Record<number, { what: string; fake: (data: Buffer) => Buffer }> = {
  0x11: { what: 'NHI basic data replaced by a fake holder of the same length', fake: fakeNhiBasicData },
  0x00: { what: 'NHI card id replaced by the fake card number', fake: fakeCardId },
  0x24: { what: 'NHI card status data replaced after its first character', fake: fakeCardStatus },
};

export interface RedactedCommand {
  pattern: BytePattern;
  redaction?: string;
}

export interface RedactedResponse {
  response: Buffer;
  redaction?: string;
}

/** Redacts one card connection's exchanges in order (it keeps the secure-messaging state). */
export class SessionRedactor {
  /** A PIN went through secure messaging since the last INITIALIZE UPDATE. */
  #pinInChannel = false;

  command(bytes: Uint8Array): RedactedCommand {
    const command = Buffer.from(bytes);
    if (command.length < 4) return { pattern: [...command] };
    const cla = command[0]!;
    const ins = command[1]!;
    const sm = isSecureMessaging(cla);
    if (ins === INS_INITIALIZE_UPDATE) this.#pinInChannel = false;
    const { start, end } = dataRange(command);
    if (isPinBearing(command)) {
      if (sm) this.#pinInChannel = true;
      const kind = cla === 0x8c ? 'protected VERIFY (IV and PIN cryptogram)' : sm ? 'secure-messaging PIN command (encrypted PIN and MAC)' : 'PIN command (the PIN)';
      return { pattern: pattern(command, start, end), redaction: `${kind} removed` };
    }
    if (sm && this.#pinInChannel && end > start) {
      return {
        pattern: pattern(command, Math.max(start, end - CMAC_LENGTH), end),
        redaction: 'C-MAC removed: it is chained from the MAC of the PIN command, so the PIN could be searched for with it',
      };
    }
    return { pattern: [...command] };
  }

  response(commandBytes: Uint8Array, responseBytes: Uint8Array): RedactedResponse {
    const response = Buffer.from(responseBytes);
    const c = commandBytes;
    const holderRead = c.length >= 4 && c[0] === 0x00 && c[1] === 0xca && c[3] === 0x00 ? NHI_HOLDER_READS[c[2]!] : undefined;
    if (!holderRead || response.length <= 2) return { response };
    const data = response.subarray(0, response.length - 2);
    return { response: Buffer.concat([holderRead.fake(data), response.subarray(response.length - 2)]), redaction: holderRead.what };
  }
}
