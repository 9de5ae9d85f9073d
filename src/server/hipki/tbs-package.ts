import { RET, HipkiRequestError } from './ret-codes.js';

/**
 * The request side of the HiPKI protocol: a `tbsPackage` JSON carried as a form value
 * (specs/hipki-local-server.md, "tbsPackage"). Pages replace `+` by `%2B` inside the JSON and
 * some URI-encode single fields, so the body is form-decoded first and parsed second; the
 * sentinel `"__NotExistedTag__"` means "absent".
 */

export const NOT_EXISTED = '__NotExistedTag__';

export type TbsPackage = Record<string, unknown>;

/** `application/x-www-form-urlencoded` decoding of one value: `+` is a space, bad `%` stay as they are. */
export function formDecode(value: string): string {
  const spaced = value.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A lone `%` (e.g. "100%") must not lose the rest: decode what is a valid escape run.
    return spaced.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

function parseObject(text: string): TbsPackage | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as TbsPackage) : undefined;
  } catch {
    return undefined;
  }
}

/** The raw (still form-encoded) tbsPackage value in a body, or the body itself when it is bare JSON. */
function rawValues(body: string): string[] {
  const trimmed = body.trim();
  if (trimmed.startsWith('{')) return [trimmed];
  const candidates: string[] = [];
  for (const part of body.split('&')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && formDecode(part.slice(0, eq)) === 'tbsPackage') {
      candidates.push(part.slice(eq + 1));
      break;
    }
  }
  // A page that did not encode `&` inside the JSON: everything after the key is the value.
  const at = body.indexOf('tbsPackage=');
  if (at === 0 || (at > 0 && body[at - 1] === '&')) candidates.push(body.slice(at + 'tbsPackage='.length));
  return candidates;
}

/**
 * Parses a request body into the tbsPackage object: form-decode once, then JSON. When that
 * does not parse (a page that URI-encoded a field holding `"`), the undecoded JSON is parsed
 * and its string fields are form-decoded one by one, which is what such a page meant.
 * Throws `HipkiRequestError` (JSON_ERROR) when nothing parses, PARAM_ERROR without a package.
 */
export function parseTbsPackage(body: string | undefined): TbsPackage {
  if (body === undefined || body.trim() === '') throw new HipkiRequestError(RET.PARAM_ERROR, 'The request carries no tbsPackage');
  const values = rawValues(body);
  if (values.length === 0) throw new HipkiRequestError(RET.PARAM_ERROR, 'The request carries no tbsPackage');
  for (const raw of values) {
    const decoded = raw.trim().startsWith('{') && raw === body.trim() ? raw : formDecode(raw);
    const parsed = parseObject(decoded);
    if (parsed) return parsed;
  }
  for (const raw of values) {
    const parsed = parseObject(raw);
    if (parsed) {
      for (const [key, value] of Object.entries(parsed)) if (typeof value === 'string') parsed[key] = formDecode(value);
      return parsed;
    }
  }
  throw new HipkiRequestError(RET.JSON_ERROR, 'tbsPackage is not a JSON object');
}

/** A field as a string; absent, `null`, the sentinel → undefined. Numbers become their text. */
export function field(pkg: TbsPackage, name: string): string | undefined {
  const value = pkg[name];
  if (value === undefined || value === null || value === NOT_EXISTED) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new HipkiRequestError(RET.PARAM_ERROR, `${name} must be a string`);
}

/** `"true"` / `true` only; `""`, `"false"`, absent → false. */
export function flag(pkg: TbsPackage, name: string): boolean {
  return field(pkg, name)?.toLowerCase() === 'true';
}

/** The func of a request for replies that echo it (unsupported paths, refusals). */
export function funcOf(body: unknown): string | undefined {
  if (typeof body !== 'string' || body === '') return undefined;
  try {
    return field(parseTbsPackage(body), 'func');
  } catch {
    return undefined;
  }
}

/**
 * Strict base64 (standard or URL alphabet, optional padding). Spaces become `+` first: a page
 * that forgot to encode `+` in a form body sends spaces, and a space is never base64.
 */
export function decodeBase64(value: string, retCode: number, what: string): Buffer {
  const text = value.replace(/ /g, '+').replace(/[\r\n\t]/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new HipkiRequestError(retCode, `${what} is not valid base64`);
  }
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
