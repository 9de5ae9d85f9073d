import { createHash } from 'node:crypto';
import iconv from 'iconv-lite';
import { desEcbDecrypt, pkcs7Unpad, tdesEcbDecrypt } from '../../crypto/des.js';
import { CardBridgeError } from '../../errors.js';

/**
 * TEST AND DEMO ONLY: what a relying site's server does with the NHI agent's password-flow
 * values (specs/nhi-agent-protocols.md section C) — undo them with the same fixed constants and
 * its own date. The bridge never decrypts anything; this file exists so that tests can prove the
 * bridge's output round-trips, and so relying-site developers can check their pages in CI.
 *
 * The constants are transcribed here from the spec on purpose, not imported from the bridge: a
 * typo on either side then breaks the round trip instead of cancelling out.
 */
const K1_SUFFIX = Buffer.from('27065866', 'hex');
const L_KEY1 = Buffer.from('272526864181565247277656', 'ascii');

/** A calendar date as the receiving server sees it (Taiwan's date). */
export interface SiteDate {
  year: number;
  month: number;
  day: number;
}

const two = (n: number) => String(n).padStart(2, '0');

/** Undoes pad78: drops every 8th byte (the random filler). Trailing zero padding remains. */
export function unpad78(data: Uint8Array): Buffer {
  if (data.length % 8 !== 0) throw new CardBridgeError('InvalidInput', 'pad78 data must be whole 8-byte blocks');
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) if (i % 8 !== 7) out.push(data[i]!);
  return Buffer.from(out);
}

function fromHex(hex: string): Buffer {
  if (!/^(?:[0-9A-F]{16})+$/.test(hex)) throw new CardBridgeError('InvalidInput', 'Expected upper-case hex of whole 8-byte blocks');
  return Buffer.from(hex, 'hex');
}

/** EnCrypt / EncryptPwd → the password, given the card id the site knows and its date. */
export function decryptNhiEnCrypt(hex: string, cardId: string | Buffer, date: SiteDate): string {
  const inner = unpad78(tdesEcbDecrypt(L_KEY1, fromHex(hex)));
  // c1 is whole 8-byte blocks; pad78 added fewer than 7 zero bytes after it.
  const c1 = inner.subarray(0, inner.length - (inner.length % 8));
  const seed = Buffer.concat([Buffer.from(cardId), Buffer.from(`${date.year}${two(date.month)}${two(date.day)}`, 'ascii')]);
  const k1 = Buffer.concat([createHash('sha1').update(seed).digest(), K1_SUFFIX]);
  return pkcs7Unpad(tdesEcbDecrypt(k1, c1)).toString('ascii');
}

/** SecureGetBasicWithParam / GetEncryptBasic → the `cardNo,ID,name,birth,sex,X` text. */
export function decryptNhiSecureBasic(hex: string, date: SiteDate): string {
  const key = Buffer.from(`${two(date.month)}${two(date.day)}${date.year}`, 'ascii');
  const blob = unpad78(desEcbDecrypt(key, fromHex(hex)));
  let end = blob.length;
  while (end > 0 && blob[end - 1] === 0) end--;
  return iconv.decode(blob.subarray(0, end), 'big5hkscs');
}
