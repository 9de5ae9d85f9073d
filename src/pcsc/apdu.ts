import { CardBridgeError } from '../errors.js';

/**
 * An ISO 7816-4 command APDU. `le` is the number of bytes expected back: `undefined` means
 * no Le field (cases 1 and 3); 256 (short) or 65536 (extended) mean "as many as available".
 */
export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data?: Uint8Array;
  le?: number;
  /** Force the extended-length form even when the short form would do. */
  extended?: boolean;
}

const SHORT_MAX_LC = 255;
const SHORT_MAX_LE = 256;
const EXTENDED_MAX_LC = 65535;
const EXTENDED_MAX_LE = 65536;

function invalid(message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `Invalid APDU: ${message}`);
}

function checkByte(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw invalid(`${name} must be a byte, got ${value}`);
  }
}

export function needsExtendedLength(apdu: CommandApdu): boolean {
  const lc = apdu.data?.length ?? 0;
  return apdu.extended === true || lc > SHORT_MAX_LC || (apdu.le ?? 0) > SHORT_MAX_LE;
}

/** Encodes a command APDU, choosing short or extended length as the sizes require. */
export function encodeCommand(apdu: CommandApdu): Buffer {
  checkByte('CLA', apdu.cla);
  checkByte('INS', apdu.ins);
  checkByte('P1', apdu.p1);
  checkByte('P2', apdu.p2);
  const data = apdu.data && apdu.data.length > 0 ? apdu.data : undefined;
  const le = apdu.le;
  if (data && data.length > EXTENDED_MAX_LC) throw invalid(`data too long (${data.length} > ${EXTENDED_MAX_LC})`);
  if (le !== undefined && (!Number.isInteger(le) || le < 1 || le > EXTENDED_MAX_LE)) {
    throw invalid(`Le must be 1..${EXTENDED_MAX_LE}, got ${le}`);
  }
  const header = [apdu.cla, apdu.ins, apdu.p1, apdu.p2];
  const extended = needsExtendedLength(apdu);
  const parts: number[] = [...header];
  if (!extended) {
    if (data) parts.push(data.length);
    const body = data ? Buffer.from(data) : Buffer.alloc(0);
    const tail = le === undefined ? [] : [le === SHORT_MAX_LE ? 0 : le];
    return Buffer.concat([Buffer.from(parts), body, Buffer.from(tail)]);
  }
  // Extended: one 00 byte introduces the lengths; with data present, Le drops its own 00.
  parts.push(0);
  if (data) parts.push(data.length >> 8, data.length & 0xff);
  const body = data ? Buffer.from(data) : Buffer.alloc(0);
  const tail = le === undefined ? [] : [(le === EXTENDED_MAX_LE ? 0 : le) >> 8, (le === EXTENDED_MAX_LE ? 0 : le) & 0xff];
  if (!data && le === undefined) return Buffer.from(header); // case 1 has no length bytes at all
  return Buffer.concat([Buffer.from(parts), body, Buffer.from(tail)]);
}

/**
 * Parses a command APDU as a card would (used by the emulated cards). Rejects every length
 * combination ISO 7816-4 does not define.
 */
export function decodeCommand(bytes: Uint8Array): CommandApdu {
  const b = Buffer.from(bytes);
  if (b.length < 4) throw invalid(`${b.length} bytes is shorter than a header`);
  const base = { cla: b[0]!, ins: b[1]!, p1: b[2]!, p2: b[3]! };
  const body = b.subarray(4);
  if (body.length === 0) return base; // case 1
  if (body.length === 1) return { ...base, le: body[0] === 0 ? SHORT_MAX_LE : body[0]! }; // case 2S
  if (body[0] !== 0) {
    // short case 3 or 4
    const lc = body[0]!;
    if (body.length === 1 + lc) return { ...base, data: body.subarray(1) };
    if (body.length === 2 + lc) {
      const le = body[1 + lc]!;
      return { ...base, data: body.subarray(1, 1 + lc), le: le === 0 ? SHORT_MAX_LE : le };
    }
    throw invalid(`Lc ${lc} does not match ${body.length - 1} bytes of body`);
  }
  // body[0] == 0 and more than one byte: extended length
  if (body.length === 3) {
    const le = (body[1]! << 8) | body[2]!;
    return { ...base, le: le === 0 ? EXTENDED_MAX_LE : le, extended: true }; // case 2E
  }
  if (body.length < 3) throw invalid('truncated extended length');
  const lc = (body[1]! << 8) | body[2]!;
  if (lc === 0) throw invalid('extended Lc of zero');
  const rest = body.length - 3;
  if (rest === lc) return { ...base, data: body.subarray(3), extended: true }; // case 3E
  if (rest === lc + 2) {
    const le = (body[3 + lc]! << 8) | body[4 + lc]!;
    return { ...base, data: body.subarray(3, 3 + lc), le: le === 0 ? EXTENDED_MAX_LE : le, extended: true };
  }
  throw invalid(`extended Lc ${lc} does not match ${rest} bytes of body`);
}

/** A response APDU: data and the two status bytes as one number (e.g. 0x9000). */
export interface ResponseApdu {
  data: Buffer;
  sw: number;
}

export function parseResponse(bytes: Uint8Array): ResponseApdu {
  if (bytes.length < 2) {
    throw new CardBridgeError('ProtocolError', `Card response of ${bytes.length} byte(s) has no status word`);
  }
  const b = Buffer.from(bytes);
  return { data: b.subarray(0, b.length - 2), sw: b.readUInt16BE(b.length - 2) };
}

export function encodeResponse(response: ResponseApdu): Buffer {
  const sw = Buffer.alloc(2);
  sw.writeUInt16BE(response.sw);
  return Buffer.concat([response.data, sw]);
}

export function isSuccess(sw: number): boolean {
  return sw === 0x9000;
}

export function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0').replace(/^(..)/, '$1 ');
}

/** Convenience for tests, emulators and specs written as hex strings with spaces. */
export function hex(s: string): Buffer {
  const clean = s.replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw invalid(`not hex: ${s}`);
  return Buffer.from(clean, 'hex');
}
