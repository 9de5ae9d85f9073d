import iconv from 'iconv-lite';
import { CardBridgeError } from '../../errors.js';
import { NHI_BASIC_DATA_LENGTH } from './commands.js';

/** Sex as the card stores it. */
export type NhiSex = 'M' | 'F';

/** The citizen's basic data held on the NHI card, as domain values. */
export interface NhiBasicData {
  /** 12 ASCII digits printed on the card. */
  cardNumber: string;
  /** The holder's name; characters that would not decode are U+FFFD. */
  name: string;
  /** False when at least one character of the name could not be decoded (then shown as U+FFFD). */
  nameComplete: boolean;
  /** National ID or resident certificate number: one letter then nine characters. */
  idNumber: string;
  /** Gregorian, ISO 8601 `yyyy-mm-dd`. */
  birthDate: string;
  /** As stored on the card: ROC era `YYYMMDD`. */
  birthDateRoc: string;
  sex: NhiSex;
  issueDate: string;
  issueDateRoc: string;
}

/** Field layout of the 57-byte record (specs/nhi-card.md). */
export const NHI_BASIC_LAYOUT = {
  cardNumber: { offset: 0, length: 12 },
  name: { offset: 12, length: 20 },
  idNumber: { offset: 32, length: 10 },
  birthDate: { offset: 42, length: 7 },
  sex: { offset: 49, length: 1 },
  issueDate: { offset: 50, length: 7 },
} as const;

/** The Gregorian year of ROC year 1. */
const ROC_EPOCH_OFFSET = 1911;

const CARD_NUMBER_PATTERN = /^\d{12}$/;
/**
 * National IDs are a letter then 9 digits; resident certificates issued to foreigners use a
 * letter then 8/9 (new style) or a second letter A–D (old style) before 8 digits.
 */
const ID_NUMBER_PATTERN = /^[A-Z][0-9A-D]\d{8}$/;

function garbage(message: string): CardBridgeError {
  return new CardBridgeError('ProtocolError', `The card's basic data is not valid: ${message}`, { stage: 'basic-data' });
}

function field(data: Buffer, name: keyof typeof NHI_BASIC_LAYOUT): Buffer {
  const { offset, length } = NHI_BASIC_LAYOUT[name];
  return data.subarray(offset, offset + length);
}

/** The field as ASCII, or a ProtocolError when it holds anything outside printable ASCII. */
function asciiField(data: Buffer, name: keyof typeof NHI_BASIC_LAYOUT): string {
  const bytes = field(data, name);
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e) throw garbage(`the ${name} field holds non-ASCII bytes`);
  }
  return bytes.toString('latin1');
}

/** True for a valid Gregorian calendar date. */
function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/**
 * ROC era `YYYMMDD` → ISO `yyyy-mm-dd` (Gregorian year = YYY + 1911). Returns undefined when
 * the text is not seven digits forming a real date from ROC year 1 on.
 */
export function rocDateToIso(roc: string): string | undefined {
  const m = /^(\d{3})(\d{2})(\d{2})$/.exec(roc);
  if (!m) return undefined;
  const rocYear = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (rocYear < 1) return undefined;
  const year = rocYear + ROC_EPOCH_OFFSET;
  if (!isCalendarDate(year, month, day)) return undefined;
  return `${String(year).padStart(4, '0')}-${m[2]}-${m[3]}`;
}

/** ISO `yyyy-mm-dd` → ROC era `YYYMMDD`; undefined for dates before ROC year 1 or after 999. */
export function isoDateToRoc(iso: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (!m) return undefined;
  const year = Number(m[1]);
  if (!isCalendarDate(year, Number(m[2]), Number(m[3]))) return undefined;
  const rocYear = year - ROC_EPOCH_OFFSET;
  if (rocYear < 1 || rocYear > 999) return undefined;
  return `${String(rocYear).padStart(3, '0')}${m[2]}${m[3]}`;
}

const REPLACEMENT = '\uFFFD';

function isBig5Lead(b: number): boolean {
  return b >= 0x81 && b <= 0xfe;
}

function isBig5Trail(b: number): boolean {
  return (b >= 0x40 && b <= 0x7e) || (b >= 0xa1 && b <= 0xfe);
}

/** A decoded character nobody can display the same way twice: private-use or replacement. */
function isUndisplayable(text: string): boolean {
  if (text.length === 0) return true;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0xfffd || (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xf0000 && cp <= 0x10ffff)) return true;
  }
  return false;
}

export interface DecodedName {
  text: string;
  /** False when at least one character became U+FFFD. */
  complete: boolean;
}

/**
 * Decodes a Big5 (with HKSCS extensions) name field: stops at the first `00`, decodes one
 * character at a time so that one undecodable character (a variant character in a
 * user-defined area, a lone lead byte) becomes exactly one U+FFFD without eating its
 * neighbours, and trims ASCII and ideographic spaces.
 */
export function decodeBig5Name(bytes: Uint8Array): DecodedName {
  const raw = Buffer.from(bytes);
  const end = raw.indexOf(0);
  const b = end === -1 ? raw : raw.subarray(0, end);
  let text = '';
  let complete = true;
  let i = 0;
  while (i < b.length) {
    const lead = b[i]!;
    if (lead < 0x80) {
      // Control characters have no place in a name.
      if (lead < 0x20 || lead === 0x7f) {
        text += REPLACEMENT;
        complete = false;
      } else {
        text += String.fromCharCode(lead);
      }
      i += 1;
      continue;
    }
    const trail = b[i + 1];
    if (!isBig5Lead(lead) || trail === undefined || !isBig5Trail(trail)) {
      // A lone or invalid lead byte: one replacement, and the next byte starts afresh.
      text += REPLACEMENT;
      complete = false;
      i += 1;
      continue;
    }
    const ch = iconv.decode(b.subarray(i, i + 2), 'big5hkscs');
    if (isUndisplayable(ch)) {
      text += REPLACEMENT;
      complete = false;
    } else {
      text += ch;
    }
    i += 2;
  }
  return { text: text.replace(/^[ \u3000]+|[ \u3000]+$/g, ''), complete };
}

/**
 * Parses the 57-byte basic data record. Every field is checked: a record that does not have
 * the documented shape raises ProtocolError (stage 'basic-data') rather than returning
 * nonsense; only the name is allowed to be partly undecodable.
 */
export function parseNhiBasicData(data: Uint8Array): NhiBasicData {
  const record = Buffer.from(data);
  if (record.length !== NHI_BASIC_DATA_LENGTH) {
    throw garbage(`expected ${NHI_BASIC_DATA_LENGTH} bytes, got ${record.length}`);
  }
  const cardNumber = asciiField(record, 'cardNumber');
  if (!CARD_NUMBER_PATTERN.test(cardNumber)) throw garbage('the card number is not 12 digits');
  const idNumber = asciiField(record, 'idNumber');
  if (!ID_NUMBER_PATTERN.test(idNumber)) throw garbage('the ID number does not have the form of a Taiwanese ID');
  const birthDateRoc = asciiField(record, 'birthDate');
  const birthDate = rocDateToIso(birthDateRoc);
  if (!birthDate) throw garbage('the birth date is not a valid ROC date');
  const sex = asciiField(record, 'sex');
  if (sex !== 'M' && sex !== 'F') throw garbage('the sex field is neither M nor F');
  const issueDateRoc = asciiField(record, 'issueDate');
  const issueDate = rocDateToIso(issueDateRoc);
  if (!issueDate) throw garbage('the issue date is not a valid ROC date');
  const name = decodeBig5Name(field(record, 'name'));
  if (name.text.length === 0) throw garbage('the name is empty');
  return { cardNumber, name: name.text, nameComplete: name.complete, idNumber, birthDate, birthDateRoc, sex, issueDate, issueDateRoc };
}

/** `A123456789` → `A12345****`: what logs and default displays show. */
export function maskIdNumber(id: string): string {
  if (id.length <= 4) return '*'.repeat(id.length);
  return id.slice(0, id.length - 4) + '****';
}
