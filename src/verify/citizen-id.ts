import { VerifyError } from './errors.js';

/**
 * What a citizen types next to a legacy HiPKI login: the national ID number (身分證統一編號)
 * and the birth date in the ROC calendar (民國 YYYMMDD). The certificate carries only the ID's
 * last four characters (2.16.886.1.100.2.51) and no birth date, so these helpers check the
 * format, match the last four, and give the site a Gregorian date to compare with its own
 * records. Input is NFKC-normalised first: a Chinese IME often types full-width digits.
 */

/** Letter → two-digit area code of the checksum (A=10 … Z=33, in the official, non-alphabetic order). */
const LETTER_CODES: Readonly<Record<string, number>> = {
  A: 10, B: 11, C: 12, D: 13, E: 14, F: 15, G: 16, H: 17, I: 34, J: 18, K: 19, L: 20, M: 21,
  N: 22, O: 35, P: 23, Q: 24, R: 25, S: 26, T: 27, U: 28, V: 29, W: 32, X: 30, Y: 31, Z: 33,
};
const WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 1];

function normalise(text: unknown): string {
  return typeof text === 'string' ? text.normalize('NFKC').trim().toUpperCase() : '';
}

/**
 * A well-formed ID number: a letter, then 1/2 (national ID) or 8/9 (resident certificate, 2021
 * format), then 8 digits, with a valid check digit. Returns it normalised; throws
 * `InvalidIdNumber`.
 */
export function normaliseIdNumber(typed: unknown): string {
  const id = normalise(typed);
  if (!/^[A-Z][1289]\d{8}$/.test(id)) {
    throw new VerifyError('InvalidIdNumber', 'The ID number must be one letter and nine digits (身分證字號格式錯誤)');
  }
  const area = LETTER_CODES[id[0]!]!;
  const digits = [...id.slice(1)].map(Number);
  const sum = Math.floor(area / 10) + (area % 10) * 9 + WEIGHTS.reduce((s, w, i) => s + w * digits[i]!, 0) + digits[8]!;
  if (sum % 10 !== 0) throw new VerifyError('InvalidIdNumber', 'The ID number\'s check digit is wrong (身分證字號檢查碼錯誤)');
  return id;
}

/**
 * Whether a typed ID number ends in the certificate's last four (`idLast4` of the verified
 * signer). False when the certificate carries none: nothing can be confirmed. Throws
 * `InvalidIdNumber` for a malformed number.
 */
export function matchIdNumber(typed: unknown, idLast4: string | undefined): boolean {
  const id = normaliseIdNumber(typed);
  return typeof idLast4 === 'string' && idLast4.length === 4 && id.slice(-4) === idLast4.toUpperCase();
}

export interface RocDate {
  /** 民國 year (Gregorian year − 1911). */
  rocYear: number;
  year: number;
  month: number;
  day: number;
  /** YYYY-MM-DD (Gregorian). */
  iso: string;
}

/**
 * Reads a typed ROC birth date, exactly seven digits YYYMMDD (民國79年1月1日 = `0790101`),
 * that is a real calendar date, no earlier than 民國1年 and not after `now`. Throws
 * `InvalidBirthDate`.
 */
export function parseRocBirthDate(typed: unknown, now: Date = new Date()): RocDate {
  const text = normalise(typed);
  const bad = (why: string) => new VerifyError('InvalidBirthDate', `The birth date ${why} (出生日期請以民國年月日7碼輸入，例如 0790101)`);
  const m = /^(\d{3})(\d{2})(\d{2})$/.exec(text);
  if (!m) throw bad('must be seven digits YYYMMDD');
  const rocYear = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (rocYear < 1) throw bad('has no year 000 in the ROC calendar');
  const year = rocYear + 1911;
  const date = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || month > 12 || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) throw bad('is not a real date');
  if (date.getTime() > now.getTime()) throw bad('is in the future');
  const iso = `${String(year).padStart(4, '0')}-${m[2]}-${m[3]}`;
  return { rocYear, year, month, day, iso };
}
