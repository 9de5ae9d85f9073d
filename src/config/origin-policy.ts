import { CardBridgeError } from '../errors.js';

/**
 * Which web origins may use the bridge. A pattern is an exact origin
 * (`https://cloudicweb.nhi.gov.tw`, `http://localhost:39444`) or a wildcard over subdomains
 * (`https://*.gov.tw`: any host ending in `.gov.tw`, never `gov.tw` itself nor
 * `evilgov.tw`). The scheme and port must match exactly, so http origins are allowed only
 * when a pattern names http.
 */
interface CompiledPattern {
  source: string;
  protocol: string;
  port: string;
  host?: string;
  suffix?: string;
}

function invalid(pattern: string, why: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `Invalid origin pattern "${pattern}": ${why}`);
}

function compile(pattern: string): CompiledPattern {
  const match = /^(https?):\/\/(\*\.)?([^/:]+)(?::(\d{1,5}))?$/i.exec(pattern.trim());
  if (!match) throw invalid(pattern, 'expected scheme://host[:port] or scheme://*.domain[:port], no path');
  const [, scheme, wildcard, host] = match;
  let url: URL;
  try {
    url = new URL(`${scheme}://${host}${match[4] ? `:${match[4]}` : ''}`);
  } catch {
    throw invalid(pattern, 'not a valid host');
  }
  if (wildcard && !url.hostname.includes('.')) throw invalid(pattern, 'a wildcard needs at least a two-label domain (e.g. *.gov.tw)');
  const compiled: CompiledPattern = { source: pattern.trim(), protocol: url.protocol, port: url.port };
  if (wildcard) compiled.suffix = `.${url.hostname}`;
  else compiled.host = url.hostname;
  return compiled;
}

/** The canonical origin of an `Origin` header value, or undefined if it is not one. */
export function canonicalOrigin(value: string | undefined): string | undefined {
  // An Origin header is scheme://host[:port] and nothing more; "null" (sandboxed frames,
  // file: pages) is never an origin we can trust.
  if (!value || !/^https?:\/\/[^/?#@\s]+$/i.test(value)) return undefined;
  try {
    return new URL(value).origin;
  } catch {
    return undefined;
  }
}

export class OriginPolicy {
  private readonly patterns: CompiledPattern[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map(compile);
  }

  get sources(): string[] {
    return this.patterns.map((p) => p.source);
  }

  allows(origin: string | undefined): boolean {
    const canonical = canonicalOrigin(origin);
    if (!canonical) return false;
    const url = new URL(canonical);
    return this.patterns.some(
      (p) =>
        p.protocol === url.protocol &&
        p.port === url.port &&
        (p.host !== undefined ? p.host === url.hostname : url.hostname.endsWith(p.suffix!) && url.hostname.length > p.suffix!.length),
    );
  }
}

/** Checks a pattern without building a policy, for the CLI and config loading. */
export function validateOriginPattern(pattern: string): string {
  return compile(pattern).source;
}
