import { OriginPolicy, canonicalOrigin, validateOriginPattern } from '../../../src/config/origin-policy.js';
import { allowedHosts, isAllowedHost, isLoopbackAddress } from '../../../src/server/security/loopback.js';
import { RateLimiter } from '../../../src/server/security/rate-limit.js';

describe('origin allow-list', () => {
  const policy = new OriginPolicy(['https://*.gov.tw', 'http://localhost:39444', 'https://exact.example.com']);

  it.each([
    ['https://www.nhi.gov.tw', true],
    ['https://cloudicweb.nhi.gov.tw', true],
    ['https://a.b.c.gov.tw', true],
    ['https://WWW.NHI.GOV.TW', true],
    ['https://gov.tw', false],
    ['https://evilgov.tw', false],
    ['https://www.gov.tw.evil.com', false],
    ['http://www.nhi.gov.tw', false],
    ['https://www.nhi.gov.tw:8443', false],
    ['http://localhost:39444', true],
    ['https://localhost:39444', false],
    ['http://localhost:39445', false],
    ['https://exact.example.com', true],
    ['https://sub.exact.example.com', false],
    ['null', false],
    ['', false],
    ['https://www.nhi.gov.tw/path', false],
    ['https://user@www.nhi.gov.tw', false],
    ['file://', false],
  ])('%s → %s', (origin, allowed) => {
    expect(policy.allows(origin)).toBe(allowed);
  });

  it('rejects malformed patterns with a clear message', () => {
    expect(() => validateOriginPattern('gov.tw')).toThrow(/Invalid origin pattern "gov.tw"/);
    expect(() => validateOriginPattern('https://*.tw')).toThrow(/two-label/);
    expect(() => validateOriginPattern('https://example.com/path')).toThrow(/no path/);
    expect(() => validateOriginPattern('ftp://example.com')).toThrow();
    expect(validateOriginPattern(' https://*.gov.tw ')).toBe('https://*.gov.tw');
  });

  it('canonicalises origins', () => {
    expect(canonicalOrigin('https://WWW.Example.com:443')).toBe('https://www.example.com');
    expect(canonicalOrigin('https://www.example.com/')).toBeUndefined();
  });
});

describe('loopback and Host checks', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.5.6.7', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['192.168.1.2', false],
    ['fe80::1', false],
    [undefined, false],
  ])('%s is loopback: %s', (address, expected) => {
    expect(isLoopbackAddress(address)).toBe(expected);
  });

  it('accepts only the listener names with its port', () => {
    const hosts = allowedHosts(['127.0.0.1', 'localhost', '::1'], 39443);
    expect(isAllowedHost('127.0.0.1:39443', hosts)).toBe(true);
    expect(isAllowedHost('LOCALHOST:39443', hosts)).toBe(true);
    expect(isAllowedHost('[::1]:39443', hosts)).toBe(true);
    expect(isAllowedHost('localhost', hosts)).toBe(false);
    expect(isAllowedHost('localhost:80', hosts)).toBe(false);
    expect(isAllowedHost('attacker.example:39443', hosts)).toBe(false);
    expect(isAllowedHost(undefined, hosts)).toBe(false);
  });
});

describe('rate limiter', () => {
  it('allows a burst, refuses beyond it, and refills over time', () => {
    let now = 0;
    const limiter = new RateLimiter(2, 3, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]);
    expect(limiter.take('b')).toBe(true); // buckets are per key
    now += 500;
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
  });
});
