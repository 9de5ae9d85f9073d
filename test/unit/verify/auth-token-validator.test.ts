import { sign as rsaSign, createHash } from 'node:crypto';
import { createTestPki, getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import type { MoicaService } from '../../../src/services/moica/moica-service.js';
import { createTestCrl } from '../../../src/emulator/moica/test-crl.js';
import { AuthTokenValidator, CrlStore, InMemoryNonceStore, MOICA_POLICY_OID, VerifyError, createAuthTokenTbs, type AuthToken } from '../../../src/verify/index.js';
import { cardService, makeToken } from './helpers.js';

const ORIGIN = 'https://www.example.gov.tw';
const YEAR_MS = 365 * 24 * 3600 * 1000;

let pki: MoicaTestPki;
let service: MoicaService;

beforeAll(async () => {
  pki = await getTestPki();
  service = await cardService(pki);
});

/** A validator on a clock the test moves. */
function validatorAt(start = Date.now(), options: { maxAgeMs?: number; anchorsOnly?: boolean } = {}) {
  const clock = { t: start };
  const validator = new AuthTokenValidator({
    trustAnchors: pki.root.pem,
    ...(options.anchorsOnly ? {} : { intermediates: [pki.issuing.der] }),
    now: () => new Date(clock.t),
    ...(options.maxAgeMs === undefined ? {} : { maxAgeMs: options.maxAgeMs }),
  });
  return { validator, clock };
}

async function rejection(promise: Promise<unknown>): Promise<VerifyError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(VerifyError);
    return e as VerifyError;
  }
  throw new Error('expected a rejection');
}

describe('AuthTokenValidator', () => {
  it('accepts a token signed by a virtual card through MoicaService', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const token = await makeToken(service, ORIGIN, nonce);
    const holder = await validator.validate(JSON.stringify(token), { origin: ORIGIN, nonce });
    expect(holder).toMatchObject({
      name: pki.holder.name,
      serialNumber: pki.holder.serialNumber,
      idLast4: pki.holder.idLastFour,
      notAfter: pki.sign.certificate.notAfter.value,
    });
    expect(holder.certificate.equals(pki.sign.der)).toBe(true);
    expect(holder).not.toHaveProperty('cardSerial');
  });

  it('accepts the issuing CA itself as the trust anchor', async () => {
    const validator = new AuthTokenValidator({ trustAnchors: [pki.issuing.der] });
    const nonce = await validator.issueNonce();
    await expect(validator.validate(await makeToken(service, ORIGIN, nonce), { origin: ORIGIN, nonce })).resolves.toMatchObject({
      serialNumber: pki.holder.serialNumber,
    });
  });

  it('issues distinct nonces', async () => {
    const { validator } = validatorAt();
    const nonces = new Set(await Promise.all(Array.from({ length: 50 }, () => validator.issueNonce())));
    expect(nonces.size).toBe(50);
  });

  it('rejects a tampered signature', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, ORIGIN, nonce);
    const signature = Buffer.from(token.signature, 'base64');
    signature[100]! ^= 0x01;
    const e = await rejection(validator.validate({ ...token, signature: signature.toString('base64') }, { origin: ORIGIN, nonce }));
    expect(e.code).toBe('BadSignature');
  });

  it('rejects a token made for another origin (as BadSignature) and spends the nonce', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, 'https://evil.example.com', nonce);
    expect((await rejection(validator.validate(token, { origin: ORIGIN, nonce }))).code).toBe('BadSignature');
    // the nonce was consumed by the failed attempt
    const good = await makeToken(service, ORIGIN, nonce);
    expect((await rejection(validator.validate(good, { origin: ORIGIN, nonce }))).code).toBe('NonceReused');
  });

  it('rejects a reused nonce', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, ORIGIN, nonce);
    await validator.validate(token, { origin: ORIGIN, nonce });
    expect((await rejection(validator.validate(token, { origin: ORIGIN, nonce }))).code).toBe('NonceReused');
  });

  it('lets only one of two concurrent validations of the same token through', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, ORIGIN, nonce);
    const results = await Promise.allSettled([validator.validate(token, { origin: ORIGIN, nonce }), validator.validate(token, { origin: ORIGIN, nonce })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed?.reason).toMatchObject({ code: 'NonceReused' });
  });

  it('rejects an unknown nonce, even with a valid signature over it', async () => {
    const { validator } = validatorAt();
    const other = validatorAt().validator;
    const nonce = await other.issueNonce(); // issued by someone else
    const token = await makeToken(service, ORIGIN, nonce);
    expect((await rejection(validator.validate(token, { origin: ORIGIN, nonce }))).code).toBe('UnknownNonce');
  });

  it('rejects an expired nonce', async () => {
    const { validator, clock } = validatorAt(Date.UTC(2030, 0, 1), { maxAgeMs: 60_000 });
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, ORIGIN, nonce);
    clock.t += 60_001;
    const e = await rejection(validator.validate(token, { origin: ORIGIN, nonce }));
    expect(e.code).toBe('NonceExpired');
  });

  it('accepts a nonce at exactly maxAgeMs', async () => {
    const { validator, clock } = validatorAt(Date.now(), { maxAgeMs: 60_000 });
    const nonce = await validator.issueNonce();
    const token = await makeToken(service, ORIGIN, nonce);
    clock.t += 60_000;
    await expect(validator.validate(token, { origin: ORIGIN, nonce })).resolves.toBeDefined();
  });

  it('rejects a certificate from another PKI', async () => {
    const stranger = await createTestPki();
    const strangerService = await cardService(stranger);
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const token = await makeToken(strangerService, ORIGIN, nonce);
    const e = await rejection(validator.validate(token, { origin: ORIGIN, nonce }));
    expect(e.code).toBe('UntrustedCertificate');
  }, 30_000);

  it('rejects a chain it cannot complete (no intermediates, root anchor only)', async () => {
    const { validator } = validatorAt(Date.now(), { anchorsOnly: true });
    const nonce = await validator.issueNonce();
    const e = await rejection(validator.validate(await makeToken(service, ORIGIN, nonce), { origin: ORIGIN, nonce }));
    expect(e.code).toBe('UntrustedCertificate');
  });

  it('rejects an expired certificate', async () => {
    // the holder's certificate is valid for 5 years, its CAs for 10 and 20
    const { validator } = validatorAt(pki.sign.certificate.notBefore.value.getTime() + 6 * YEAR_MS);
    const nonce = await validator.issueNonce();
    const e = await rejection(validator.validate(await makeToken(service, ORIGIN, nonce), { origin: ORIGIN, nonce }));
    expect(e.code).toBe('CertificateExpired');
    expect(e.message).toMatch(/expired at/);
  });

  it('rejects the encryption certificate (no digitalSignature)', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const tbs = createAuthTokenTbs(ORIGIN, nonce);
    const token: AuthToken = {
      format: 'cardbridge-auth-token',
      version: 1,
      algorithm: 'RS256',
      certificate: pki.encrypt.der.toString('base64'),
      signature: rsaSign('sha256', tbs, pki.encrypt.privateKey).toString('base64'),
    };
    const e = await rejection(validator.validate(token, { origin: ORIGIN, nonce }));
    expect(e.code).toBe('NotSigningCertificate');
  });

  it('checks the required policy and revocation when configured (CRL from the issuing CA)', async () => {
    const now = new Date();
    const crlTimes = { thisUpdate: new Date(now.getTime() - 3600_000), nextUpdate: new Date(now.getTime() + 24 * 3600_000) };
    const rootCrl = await createTestCrl({ issuer: pki.root, ...crlTimes });
    const revoking = await createTestCrl({ issuer: pki.issuing, ...crlTimes, revoked: [{ certificate: pki.sign }] });
    const base = { trustAnchors: pki.root.pem, intermediates: [pki.issuing.der], now: () => now };
    const revokedValidator = new AuthTokenValidator({ ...base, revocation: { crls: new CrlStore([rootCrl.der, revoking.der]) } });
    let nonce = await revokedValidator.issueNonce();
    expect((await rejection(revokedValidator.validate(await makeToken(service, ORIGIN, nonce), { origin: ORIGIN, nonce }))).code).toBe(
      'CertificateRevoked',
    );
    // The test PKI asserts no policy, so requiring MOICA's refuses it.
    const policyValidator = new AuthTokenValidator({ ...base, requiredPolicies: [MOICA_POLICY_OID] });
    nonce = await policyValidator.issueNonce();
    expect((await rejection(policyValidator.validate(await makeToken(service, ORIGIN, nonce), { origin: ORIGIN, nonce }))).code).toBe('WrongPolicy');
  });

  it('checks RS256 over the tbs, i.e. the card signed SHA256(tbs)', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    const tbs = createAuthTokenTbs(ORIGIN, nonce);
    // the same key signing the tbs digest itself (no second hash) must not pass
    const wrong = await service.sign({ digest: tbs.subarray(0, 32), hash: 'sha256', format: 'pkcs1' }, '123456');
    const token: AuthToken = {
      format: 'cardbridge-auth-token',
      version: 1,
      algorithm: 'RS256',
      certificate: wrong.certificate.toString('base64'),
      signature: wrong.signature.toString('base64'),
    };
    expect((await rejection(validator.validate(token, { origin: ORIGIN, nonce }))).code).toBe('BadSignature');
    expect(createHash('sha256').update(tbs).digest()).toHaveLength(32);
  });

  describe('malformed tokens', () => {
    const shapes: Array<[string, (t: AuthToken) => unknown]> = [
      ['a string that is not JSON', () => 'not a token'],
      ['an array', (t) => [t]],
      ['a wrong format', (t) => ({ ...t, format: 'web-eid:1' })],
      ['version 2', (t) => ({ ...t, version: 2 })],
      ['algorithm PS256', (t) => ({ ...t, algorithm: 'PS256' })],
      ['an extra field', (t) => ({ ...t, origin: ORIGIN })],
      ['a missing signature', ({ signature: _s, ...rest }) => rest],
      ['a certificate that is not DER', (t) => ({ ...t, certificate: Buffer.from('hello world!').toString('base64') })],
      ['a certificate in PEM', (t) => ({ ...t, certificate: pki.sign.pem })],
    ];
    it.each(shapes)('rejects %s without spending the nonce', async (_, mangle) => {
      const { validator } = validatorAt();
      const nonce = await validator.issueNonce();
      const token = await makeToken(service, ORIGIN, nonce);
      expect((await rejection(validator.validate(mangle(token), { origin: ORIGIN, nonce }))).code).toBe('MalformedToken');
      await expect(validator.validate(token, { origin: ORIGIN, nonce })).resolves.toBeDefined();
    });
  });

  it('refuses a badly configured expected origin as a programming error', async () => {
    const { validator } = validatorAt();
    const nonce = await validator.issueNonce();
    await expect(validator.validate({}, { origin: 'https://www.example.gov.tw/', nonce })).rejects.toThrow(TypeError);
    expect(() => new AuthTokenValidator({ trustAnchors: [] })).toThrow(TypeError);
    expect(() => new AuthTokenValidator({ trustAnchors: 'not pem' })).toThrow(TypeError);
  });
});

describe('InMemoryNonceStore', () => {
  it('forgets nonces after their retention and caps its size', () => {
    const store = new InMemoryNonceStore({ retentionMs: 1000, maxEntries: 3 });
    store.add('a', 0);
    store.add('b', 10);
    expect(store.consume('a', 500)).toEqual({ status: 'fresh', issuedAt: 0 });
    expect(store.consume('a', 600)).toEqual({ status: 'reused', issuedAt: 0 });
    expect(store.consume('a', 1001)).toEqual({ status: 'unknown' });
    store.add('c', 1002);
    store.add('d', 1003);
    store.add('e', 1004);
    expect(store.size).toBe(3);
    expect(store.consume('b', 1005)).toEqual({ status: 'unknown' });
    expect(() => store.add('e', 1006)).toThrow(/collision/);
  });
});
