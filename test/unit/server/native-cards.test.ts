import { createHash, verify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildNativeApp } from '../../../src/server/native/app.js';
import { memoryAudit } from '../../../src/server/shared/audit.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { VirtualNhiCard, NHI_TEST_IDENTITY } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { TriesTracker } from '../../../src/services/pin/tries-tracker.js';
import { buildHipkiApp } from '../../../src/server/hipki/app.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';
import { testTls } from '../../helpers/tls.js';

const SITE = 'https://www.example.gov.tw';
const OTHER_SITE = 'https://other.gov.tw';
const PIN = '246810';

describe('native API card flows (consent and PIN in cardbridge’s window)', () => {
  let app: FastifyInstance;
  let port: number;
  let registry: MockReaderRegistry;
  let moicaCard: VirtualMoicaGen2Card;
  let stateDir: string;
  let sites: SitesStore;
  let audit: ReturnType<typeof memoryAudit>;
  let own: string;
  let ca: string;
  let services: { nhi: NhiService; moica: MoicaService };

  const api = (method: string, path: string, body?: unknown, origin: string | null = SITE) =>
    request({
      ca,
      port,
      method,
      path,
      headers: { ...(origin ? { origin } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  /** What cardbridge's window does: read the request with its secret, then answer. */
  const windowFor = (approveUrl: string) => {
    const url = new URL(approveUrl);
    const secret = url.hash.slice(1);
    const path = `/ui/api/requests/${url.pathname.split('/').pop()}`;
    return {
      view: () => request({ ca, port, path, headers: { 'x-cardbridge-secret': secret, 'sec-fetch-site': 'same-origin' } }),
      answer: (body: object, origin = own) =>
        request({ ca, port, path, method: 'POST', headers: { 'x-cardbridge-secret': secret, 'content-type': 'application/json', origin }, body: JSON.stringify(body) }),
    };
  };

  beforeEach(async () => {
    const tls = await testTls();
    ca = tls.ca;
    port = await freePort();
    own = `https://127.0.0.1:${port}`;
    stateDir = mkdtempSync(join(tmpdir(), 'cardbridge-native-'));
    sites = SitesStore.inStateDir(stateDir);
    registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
    registry.addReader('NHI reader');
    registry.addReader('MOICA reader');
    await registry.insertCard('NHI reader', new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    moicaCard = new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN, triesLeft: 3, maxTries: 3 });
    await registry.insertCard('MOICA reader', moicaCard);
    audit = memoryAudit();
    services = { nhi: new NhiService(registry), moica: new MoicaService(registry, { tries: TriesTracker.inStateDir(stateDir) }) };
    app = await buildNativeApp({
      registry,
      policy: () => sites.policy(),
      port,
      https: { key: tls.key, cert: tls.cert },
      logger: false,
      cards: { services, sites, audit },
    });
    await app.listen({ port, host: '127.0.0.1' });
  });

  afterEach(async () => {
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('asks once for consent to read the NHI card, remembers it, and audits each read', async () => {
    const first = await api('POST', '/v1/nhi/basic', {});
    expect(first.status).toBe(202);
    const { id, approveUrl } = first.json();
    expect(approveUrl).toMatch(new RegExp(`^${own}/ui/approve/${id}#[A-Za-z0-9_-]+$`));
    expect((await api('GET', `/v1/requests/${id}`)).json()).toEqual({ id, state: 'pending' });

    const window = windowFor(approveUrl);
    const shown = (await window.view()).json();
    expect(shown).toMatchObject({ kind: 'consent', origin: SITE, state: 'pending', card: expect.stringContaining('健保卡'), rememberDays: 90 });
    expect((await window.answer({ decision: 'allow', remember: true })).json()).toMatchObject({ state: 'done' });

    const done = (await api('GET', `/v1/requests/${id}?wait=1`)).json();
    expect(done).toMatchObject({ state: 'done', result: { name: NHI_TEST_IDENTITY.name, idNumber: NHI_TEST_IDENTITY.idNumber, birthDate: NHI_TEST_IDENTITY.birthDate } });

    const again = await api('POST', '/v1/nhi/basic', {});
    expect(again.status).toBe(200);
    expect(again.json().cardNumber).toBe(NHI_TEST_IDENTITY.cardNumber);
    expect(JSON.parse(readFileSync(join(stateDir, 'sites.json'), 'utf8')).consents[SITE]['nhi.read']).toEqual(expect.any(String));
    expect(audit.entries.map((e) => [e.origin, e.operation, e.result])).toEqual([
      [SITE, 'nhi.basic', 'ok'],
      [SITE, 'nhi.basic', 'ok'],
    ]);
    // consent is per origin
    expect((await api('POST', '/v1/nhi/basic', {}, OTHER_SITE)).status).toBe(202);
  });

  it('"allow this time" reads once and remembers nothing: the next read asks again', async () => {
    const { approveUrl, id } = (await api('POST', '/v1/nhi/basic', {})).json();
    expect((await windowFor(approveUrl).answer({ decision: 'allow', remember: false })).json()).toMatchObject({ state: 'done' });
    expect((await api('GET', `/v1/requests/${id}?wait=1`)).json()).toMatchObject({ state: 'done', result: { name: NHI_TEST_IDENTITY.name } });
    expect(sites.hasConsent(SITE, 'nhi.read')).toBe(false);
    expect((await api('POST', '/v1/nhi/basic', {})).status).toBe(202);
    // an allow without a choice is "this time" too: remembering needs the explicit button
    const second = (await api('POST', '/v1/nhi/basic', {})).json();
    await windowFor(second.approveUrl).answer({ decision: 'allow' });
    expect(sites.hasConsent(SITE, 'nhi.read')).toBe(false);
  });

  it('a denied consent fails the request as Cancelled and reads nothing', async () => {
    const { approveUrl, id } = (await api('POST', '/v1/nhi/basic', {})).json();
    await windowFor(approveUrl).answer({ decision: 'deny' });
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'Cancelled', status: 409 } });
    expect(sites.hasConsent(SITE, 'nhi.read')).toBe(false);
    expect(audit.entries).toEqual([]);
  });

  it('never lets a web page answer its own prompt, even an allowed one', async () => {
    const { approveUrl } = (await api('POST', '/v1/nhi/basic', {})).json();
    const window = windowFor(approveUrl);
    const forged = await window.answer({ decision: 'allow' }, SITE);
    expect(forged.status).toBe(403);
    const noOrigin = await request({ ca, port, method: 'POST', path: new URL(approveUrl).pathname.replace('/ui/approve/', '/ui/api/requests/'), headers: { 'content-type': 'application/json', 'x-cardbridge-secret': new URL(approveUrl).hash.slice(1) }, body: '{"decision":"allow"}' });
    expect(noOrigin.status).toBe(403);
    const wrongSecret = await request({ ca, port, path: new URL(approveUrl).pathname.replace('/ui/approve/', '/ui/api/requests/'), headers: { 'x-cardbridge-secret': 'A'.repeat(43) } });
    expect(wrongSecret.status).toBe(400);
    expect(sites.hasConsent(SITE, 'nhi.read')).toBe(false);
  });

  it('serves the window with a CSP that forbids framing', async () => {
    const { approveUrl } = (await api('POST', '/v1/nhi/basic', {})).json();
    const page = await request({ ca, port, path: new URL(approveUrl).pathname });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).toContain('/ui/approve.js');
  });

  it('only the asking origin may read or cancel a request', async () => {
    const { id } = (await api('POST', '/v1/nhi/basic', {})).json();
    expect((await api('GET', `/v1/requests/${id}`, undefined, OTHER_SITE)).status).toBe(400);
    expect((await api('DELETE', `/v1/requests/${id}`, undefined, OTHER_SITE)).status).toBe(400);
    expect((await api('DELETE', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'Cancelled' } });
  });

  it('refuses card operations from requests without an Origin, and says what card is missing', async () => {
    expect((await api('POST', '/v1/nhi/basic', {}, null)).json()).toMatchObject({ code: 'NotAllowedOrigin', status: 403 });
    registry.removeCard('NHI reader');
    expect((await api('POST', '/v1/nhi/basic', {})).json()).toMatchObject({ code: 'WrongCard', status: 409 });
    registry.removeCard('MOICA reader');
    expect((await api('POST', '/v1/nhi/basic', {})).json()).toMatchObject({ code: 'NoCard', status: 409 });
  });

  it('validates bodies against the schema', async () => {
    expect((await api('POST', '/v1/nhi/hsign', { random: '12345' })).json()).toMatchObject({ code: 'InvalidInput', status: 400 });
    expect((await api('POST', '/v1/moica/sign', { hash: 'sha256' })).status).toBe(400);
    expect((await api('POST', '/v1/moica/sign', { data: 'AAAA', hash: 'md5' })).status).toBe(400);
    expect((await api('POST', '/v1/moica/authenticate', { nonce: 'short' })).status).toBe(400);
    const notJson = await request({ ca, port, method: 'POST', path: '/v1/nhi/basic', headers: { origin: SITE, 'content-type': 'application/json' }, body: '{"reader":' });
    expect(notJson.status).toBe(400);
    const huge = await request({ ca, port, method: 'POST', path: '/v1/moica/sign', headers: { origin: SITE, 'content-type': 'application/json' }, body: JSON.stringify({ data: 'A'.repeat(70_000) }) });
    expect(huge.status).toBe(413);
  });

  it('never accepts a PIN from the page', async () => {
    const res = await api('POST', '/v1/moica/sign', { data: Buffer.from('hello').toString('base64'), pin: PIN });
    expect(res.status).toBe(400);
    expect(res.json().detail).toContain('never takes a PIN');
    expect(moicaCard.received.filter((c) => (c[1] === 0x20))).toHaveLength(0);
  });

  it('signs after the PIN is typed in the window: wrong twice, last try needs confirmation, then right; the card is reset', async () => {
    const data = Buffer.from('申報資料 test payload');
    const started = await api('POST', '/v1/moica/sign', { data: data.toString('base64'), hash: 'sha256', format: 'pkcs1' });
    expect(started.status).toBe(202);
    const { id, approveUrl } = started.json();
    const window = windowFor(approveUrl);
    expect((await window.view()).json()).toMatchObject({ kind: 'pin', operation: expect.stringContaining('Sign') });

    expect((await window.answer({ decision: 'allow', pin: '000000' })).json()).toMatchObject({ state: 'pending', triesLeft: 2, problem: { code: 'PinIncorrect' } });
    expect((await window.answer({ decision: 'allow', pin: '111111' })).json()).toMatchObject({ state: 'pending', triesLeft: 1 });
    expect((await window.view()).json()).toMatchObject({ triesLeft: 1, blocked: false });
    const unconfirmed = await window.answer({ decision: 'allow', pin: PIN });
    expect(unconfirmed.status).toBe(428);
    expect(unconfirmed.json()).toMatchObject({ code: 'LastTryNeedsConfirmation', triesLeft: 1, detail: expect.stringContaining('one PIN try left') });
    expect(moicaCard.triesLeft).toBe(1);

    const resetsBefore = moicaCard.resets;
    expect((await window.answer({ decision: 'allow', pin: PIN, confirmLastTry: true })).json()).toMatchObject({ state: 'done' });
    expect(moicaCard.resets).toBeGreaterThan(resetsBefore);
    const result = (await api('GET', `/v1/requests/${id}`)).json().result;
    const certificate = new X509Certificate(Buffer.from(result.certificate, 'base64'));
    expect(verify('sha256', data, certificate.publicKey, Buffer.from(result.signature, 'base64'))).toBe(true);
    expect(audit.entries.map((e) => e.result)).toEqual(['PinIncorrect', 'PinIncorrect', 'ok']);
  });

  it('tries spent on another path (HiPKI) make the window ask for the last-try confirmation; no VERIFY until it is given', async () => {
    const hipkiPort = await freePort();
    const hipki = await buildHipkiApp({ registry, moica: services.moica, sites, port: hipkiPort, logger: false });
    await hipki.listen({ port: hipkiPort, host: '127.0.0.1' });
    const pkg = (pin: string) => `tbsPackage=${encodeURIComponent(JSON.stringify({ func: 'MakeSignature', signatureType: 'PKCS1', tbs: 'x', pin }))}`;
    const legacy = async (pin: string) =>
      (await request({ port: hipkiPort, path: '/sign', method: 'POST', headers: { origin: SITE, 'content-type': 'application/x-www-form-urlencoded' }, body: pkg(pin) })).json();
    expect(await legacy('000000')).toMatchObject({ ret_code: 0x76100006, last_error: -2147483646 });
    expect(await legacy('000000')).toMatchObject({ ret_code: 0x76100006, last_error: -2147483647 });
    await hipki.close();
    expect(moicaCard.triesLeft).toBe(1);

    const { approveUrl, id } = (await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64') })).json();
    const window = windowFor(approveUrl);
    expect((await window.view()).json()).toMatchObject({ kind: 'pin', triesLeft: 1, blocked: false });
    const verifies = () => moicaCard.received.filter((c) => c[1] === 0x20).length;
    const before = verifies();
    const unconfirmed = await window.answer({ decision: 'allow', pin: PIN });
    expect(unconfirmed.json()).toMatchObject({ code: 'LastTryNeedsConfirmation', triesLeft: 1 });
    expect(verifies()).toBe(before);
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'pending' });
    expect((await window.answer({ decision: 'allow', pin: PIN, confirmLastTry: true })).json()).toMatchObject({ state: 'done' });
    // a success resets the count: the next window shows no tries left at all
    const next = windowFor((await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('y').digest('base64') })).json().approveUrl);
    expect((await next.view()).json()).not.toHaveProperty('triesLeft');
  });

  it('a card known to be blocked is never asked for a PIN: the window says so and no VERIFY is sent', async () => {
    for (let i = 0; i < 3; i++) await services.moica.sign({ data: Buffer.from('x') }, '000000', { confirmLastTry: true }).catch(() => undefined);
    expect(moicaCard.triesLeft).toBe(0);
    const verifies = () => moicaCard.received.filter((c) => c[1] === 0x20).length;
    const before = verifies();
    const { approveUrl, id } = (await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64') })).json();
    const window = windowFor(approveUrl);
    expect((await window.view()).json()).toMatchObject({ kind: 'pin', blocked: true, triesLeft: 0, unblockHint: expect.stringContaining('用戶代碼') });
    await window.answer({ decision: 'allow', pin: PIN, confirmLastTry: true });
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'PinBlocked', hint: expect.stringContaining('用戶代碼') } });
    expect(verifies()).toBe(before);
  });

  it('a card pulled out while the window waits is CardRemoved in the window and to the page, and gets no PIN', async () => {
    const started = await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64'), hash: 'sha256', format: 'pkcs1' });
    const { id, approveUrl } = started.json();
    const window = windowFor(approveUrl);
    registry.removeCard('MOICA reader'); // the NHI card stays in the other reader
    const shown = (await window.view()).json();
    expect(shown).toMatchObject({ state: 'failed', problem: { code: 'CardRemoved' } });
    expect((await window.answer({ decision: 'allow', pin: PIN })).json()).toMatchObject({ state: 'failed', problem: { code: 'CardRemoved' } });
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'CardRemoved' } });
    expect(moicaCard.received.filter((c) => c[1] === 0x20)).toHaveLength(0);
  });

  it('a card swapped while the window waits is never used: the other card gets no PIN', async () => {
    const started = await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64'), hash: 'sha256', format: 'pkcs1' });
    const { id, approveUrl } = started.json();
    registry.removeCard('MOICA reader');
    const other = new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN, triesLeft: 3, maxTries: 3 });
    await registry.insertCard('MOICA reader', other);
    await windowFor(approveUrl).answer({ decision: 'allow', pin: PIN });
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'CardRemoved' } });
    expect(other.received.filter((c) => c[1] === 0x20)).toHaveLength(0);
  });

  it('allows one PIN prompt per card at a time', async () => {
    const body = { digest: createHash('sha256').update('x').digest('base64') };
    expect((await api('POST', '/v1/moica/sign', body)).status).toBe(202);
    const second = await api('POST', '/v1/moica/sign', body, OTHER_SITE);
    expect(second.status).toBe(503);
    expect(second.json().code).toBe('Busy');
  });

  it('reports a blocked card with the unblock hint', async () => {
    const { approveUrl, id } = (await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64') })).json();
    const window = windowFor(approveUrl);
    await window.answer({ decision: 'allow', pin: '000000' });
    await window.answer({ decision: 'allow', pin: '000000' });
    await window.answer({ decision: 'allow', pin: '000000', confirmLastTry: true });
    expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'PinBlocked', status: 423, hint: expect.stringContaining('用戶代碼') } });
  });

  it('reports a card pulled out mid-operation as CardRemoved, and the next card works', async () => {
    await sites.grant(SITE, 'nhi.read');
    const inner = new VirtualNhiCard({ identity: NHI_TEST_IDENTITY });
    let pullAfter = Infinity;
    let seen = 0;
    await registry.insertCard('NHI reader', {
      atr: inner.atr,
      reset: () => inner.reset?.(),
      process: (command) => {
        if (++seen === pullAfter) registry.removeCard('NHI reader');
        return inner.process(command);
      },
    });
    pullAfter = seen + 2; // after recognition: the second APDU of the read
    const pulled = await api('POST', '/v1/nhi/basic', {});
    expect(pulled.status).toBe(409);
    expect(pulled.json().code).toBe('CardRemoved');
    await registry.insertCard('NHI reader', new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    expect((await api('POST', '/v1/nhi/basic', {})).status).toBe(200);
    expect(audit.entries.map((e) => e.result)).toEqual(['CardRemoved', 'ok']);
  });

  it('makes an origin-bound login token that verifies for that origin and nonce only', async () => {
    const nonce = 'n'.repeat(16) + Buffer.from('random nonce bytes!').toString('base64url');
    const { approveUrl, id } = (await api('POST', '/v1/moica/authenticate', { nonce })).json();
    await windowFor(approveUrl).answer({ decision: 'allow', pin: PIN });
    const { token } = (await api('GET', `/v1/requests/${id}`)).json().result;
    expect(token).toMatchObject({ format: 'cardbridge-auth-token', version: 1, algorithm: 'RS256' });
    const key = new X509Certificate(Buffer.from(token.certificate, 'base64')).publicKey;
    const tbs = (origin: string, n: string) => Buffer.concat([createHash('sha256').update(origin).digest(), createHash('sha256').update(n).digest()]);
    const signature = Buffer.from(token.signature, 'base64');
    expect(verify('sha256', tbs(SITE, nonce), key, signature)).toBe(true);
    expect(verify('sha256', tbs(OTHER_SITE, nonce), key, signature)).toBe(false);
    expect(verify('sha256', tbs(SITE, `${nonce}x`), key, signature)).toBe(false);
  });
  describe('a request that names its reader (two citizen certificate cards)', () => {
    const SECOND = 'MOICA reader 2';
    let second: VirtualMoicaGen2Card;
    const verifies = (card: VirtualMoicaGen2Card) => card.received.filter((c) => c[1] === 0x20).length;

    beforeEach(async () => {
      registry.addReader(SECOND);
      second = new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN, serialNumber: 'TP03000087654321', triesLeft: 3, maxTries: 3 });
      await registry.insertCard(SECOND, second);
    });

    it('sign and authenticate with `reader` use that card: the window names it, and the other card gets no VERIFY', async () => {
      const digest = createHash('sha256').update('x').digest('base64');
      const nonce = 'n'.repeat(40);
      for (const [path, body] of [
        ['/v1/moica/sign', { digest, hash: 'sha256', format: 'pkcs1', reader: SECOND }],
        ['/v1/moica/authenticate', { nonce, reader: SECOND }],
      ] as const) {
        const started = await api('POST', path, body);
        expect(started.status).toBe(202);
        const { id, approveUrl } = started.json();
        const window = windowFor(approveUrl);
        expect((await window.view()).json().card).toContain(SECOND);
        expect((await window.answer({ decision: 'allow', pin: PIN })).json()).toMatchObject({ state: 'done' });
        expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'done' });
      }
      expect(verifies(second)).toBe(2);
      expect(verifies(moicaCard)).toBe(0);
    });

    it('with no reader named, the PIN window lists both cards and the citizen chooses before the PIN; only the chosen card gets it', async () => {
      const started = await api('POST', '/v1/moica/sign', { digest: createHash('sha256').update('x').digest('base64'), hash: 'sha256', format: 'pkcs1' });
      expect(started.status).toBe(202);
      const { id, approveUrl } = started.json();
      const window = windowFor(approveUrl);
      const view = (await window.view()).json();
      expect(view.kind).toBe('pin');
      expect(view.chosen).toBeUndefined();
      expect(view.choices).toEqual([
        { reader: 'MOICA reader', holder: expect.any(String), card: expect.stringMatching(/^[A-Z0-9]{2}\*+[0-9]{4}$/) },
        { reader: SECOND, holder: expect.any(String), card: 'TP**********4321' },
      ]);
      expect(view.choices[0].holder.length).toBeGreaterThan(0);

      // No PIN before a choice, and no choice outside the list.
      expect((await window.answer({ decision: 'allow', pin: PIN })).json()).toMatchObject({ code: 'InvalidInput', status: 400 });
      expect((await window.answer({ decision: 'allow', choose: 'No such reader' })).json()).toMatchObject({ code: 'InvalidInput', status: 400 });
      expect(verifies(moicaCard) + verifies(second)).toBe(0);

      const chosen = (await window.answer({ decision: 'allow', choose: SECOND })).json();
      expect(chosen).toMatchObject({ state: 'pending', chosen: SECOND, card: expect.stringContaining(SECOND) });
      expect((await window.answer({ decision: 'allow', choose: 'MOICA reader' })).json()).toMatchObject({ code: 'InvalidInput', status: 400 });
      expect((await window.answer({ decision: 'allow', pin: PIN })).json()).toMatchObject({ state: 'done' });
      expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'done' });
      expect(verifies(second)).toBe(1);
      expect(verifies(moicaCard)).toBe(0);
      expect(audit.entries.at(-1)).toMatchObject({ operation: 'moica.sign', reader: SECOND, result: 'ok' });
    });

    it('the chosen card taken out before the PIN ends the request as CardRemoved; a card not chosen leaving only shortens the list', async () => {
      const digest = createHash('sha256').update('x').digest('base64');
      const first = (await api('POST', '/v1/moica/sign', { digest })).json();
      const window = windowFor(first.approveUrl);
      registry.removeCard('MOICA reader');
      expect((await window.view()).json().choices.map((c: { reader: string }) => c.reader)).toEqual([SECOND]);
      await window.answer({ decision: 'allow', choose: SECOND });
      registry.removeCard(SECOND);
      expect((await api('GET', `/v1/requests/${first.id}`)).json()).toMatchObject({ state: 'failed', problem: { code: 'CardRemoved' } });
      expect(verifies(moicaCard) + verifies(second)).toBe(0);
    });

    it('certificates with ?reader= read that card only', async () => {
      const before = moicaCard.received.length;
      const started = await api('GET', `/v1/moica/certificates?reader=${encodeURIComponent(SECOND)}`);
      expect(started.status).toBe(202);
      const { id, approveUrl } = started.json();
      expect((await windowFor(approveUrl).view()).json().card).toContain(SECOND);
      await windowFor(approveUrl).answer({ decision: 'allow' });
      expect((await api('GET', `/v1/requests/${id}`)).json()).toMatchObject({ state: 'done', result: { certificates: expect.any(Array) } });
      expect(second.received.length).toBeGreaterThan(0);
      expect(moicaCard.received.length).toBe(before);
    });

    it('every card route refuses a reader that is not there, or holds another kind of card, before any window opens', async () => {
      const digest = createHash('sha256').update('x').digest('base64');
      const nonce = 'n'.repeat(40);
      const routes = (reader: string): Array<[string, string, object | undefined]> => [
        ['POST', '/v1/nhi/basic', { reader }],
        ['POST', '/v1/nhi/hsign', { reader }],
        ['GET', `/v1/moica/certificates?reader=${encodeURIComponent(reader)}`, undefined],
        ['POST', '/v1/moica/sign', { digest, reader }],
        ['POST', '/v1/moica/authenticate', { nonce, reader }],
      ];
      for (const [method, path, body] of routes('No such reader')) {
        expect([path, (await api(method, path, body)).json().code]).toEqual([path, 'NoReader']);
      }
      for (const [method, path, body] of routes('NHI reader').filter(([, p]) => p.includes('moica'))) {
        expect([path, (await api(method, path, body)).json().code]).toEqual([path, 'WrongCard']);
      }
      for (const [method, path, body] of routes(SECOND).filter(([, p]) => p.includes('nhi'))) {
        expect([path, (await api(method, path, body)).json().code]).toEqual([path, 'WrongCard']);
      }
      expect(verifies(moicaCard) + verifies(second)).toBe(0);
    });

    it('a reader name that is not a short string is refused by the schema', async () => {
      expect((await api('POST', '/v1/moica/sign', { digest: 'AAAA', reader: { name: SECOND } })).status).toBe(400);
      expect((await api('POST', '/v1/moica/sign', { digest: 'AAAA', reader: '' })).status).toBe(400);
      expect((await api('POST', '/v1/moica/authenticate', { nonce: 'n'.repeat(40), reader: 'r'.repeat(201) })).status).toBe(400);
      expect((await api('GET', `/v1/moica/certificates?reader=${'r'.repeat(201)}`)).status).toBe(400);
    });
  });
});
