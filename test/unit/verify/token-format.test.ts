import { createHash } from 'node:crypto';
import { AuthTokenFormatError, createAuthTokenTbs, isSerializedOrigin, parseAuthToken } from '../../../src/verify/token-format.js';

const NONCE = 'n'.repeat(43);
const GOOD = { format: 'cardbridge-auth-token', version: 1, algorithm: 'RS256', certificate: 'MIIB', signature: 'AAAA' };

describe('createAuthTokenTbs', () => {
  it('is SHA256(origin) ‖ SHA256(nonce)', () => {
    const tbs = createAuthTokenTbs('https://www.example.gov.tw', NONCE);
    const expected = Buffer.concat([
      createHash('sha256').update('https://www.example.gov.tw').digest(),
      createHash('sha256').update(NONCE).digest(),
    ]);
    expect(tbs.equals(expected)).toBe(true);
    expect(tbs).toHaveLength(64);
  });

  it.each(['https://www.example.gov.tw/', 'https://WWW.example.gov.tw', 'https://example.gov.tw:443', 'https://a.gov.tw/path', 'null', '', 'example.gov.tw'])(
    'refuses the non-serialised origin %j',
    (origin) => {
      expect(isSerializedOrigin(origin)).toBe(false);
      expect(() => createAuthTokenTbs(origin, NONCE)).toThrow(AuthTokenFormatError);
    },
  );

  it('keeps a non-default port', () => {
    expect(isSerializedOrigin('https://localhost:8443')).toBe(true);
  });

  it('refuses nonces outside 32–128 characters', () => {
    expect(() => createAuthTokenTbs('https://a.gov.tw', 'x'.repeat(31))).toThrow(/32–128/);
    expect(() => createAuthTokenTbs('https://a.gov.tw', 'x'.repeat(129))).toThrow(/32–128/);
    expect(createAuthTokenTbs('https://a.gov.tw', 'x'.repeat(128))).toHaveLength(64);
  });
});

describe('parseAuthToken', () => {
  it('accepts the object and its JSON text', () => {
    expect(parseAuthToken(GOOD)).toEqual(GOOD);
    expect(parseAuthToken(JSON.stringify(GOOD))).toEqual(GOOD);
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{format:', /not valid JSON/],
    ['an array', [GOOD], /JSON object/],
    ['null', null, /JSON object/],
    ['an extra field', { ...GOOD, nonce: 'x' }, /unknown field\(s\): nonce/],
    ['a missing field', (({ signature: _s, ...rest }) => rest)(GOOD), /lacks field\(s\): signature/],
    ['another format', { ...GOOD, format: 'web-eid:1.0' }, /format must be/],
    ['version as text', { ...GOOD, version: '1' }, /version must be 1/],
    ['another algorithm', { ...GOOD, algorithm: 'ES256' }, /algorithm must be 'RS256'/],
    ['base64url', { ...GOOD, signature: 'AA-_' }, /signature is not canonical base64/],
    ['unpadded base64', { ...GOOD, certificate: 'MII' }, /certificate is not canonical base64/],
    ['an empty signature', { ...GOOD, signature: '' }, /signature is empty/],
    ['a numeric certificate', { ...GOOD, certificate: 42 }, /certificate must be a base64 string/],
  ])('rejects %s', (_, value, message) => {
    expect(() => parseAuthToken(value)).toThrow(message);
  });
});
