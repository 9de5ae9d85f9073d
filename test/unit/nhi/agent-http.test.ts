import { verify } from 'node:crypto';
import { NHI_TEST_IDENTITY } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { decryptNhiEnCrypt, decryptNhiSecureBasic } from '../../../src/emulator/nhi/relying-site.js';
import { parseHSign } from '../../../src/server/nhi/operations.js';
import { STATUS_BITMAP_WIDTH, decodeJsonBitmap } from '../../../src/server/nhi/status-bitmap.js';
import { type HttpAnswer, request } from '../../helpers/http.js';
import { NHI_READER, NhiAgentRig } from '../../helpers/nhi-agent.js';

const SITE = 'https://www.example.gov.tw';
const CARD_NO = NHI_TEST_IDENTITY.cardNumber;
const NOW = new Date('2024-07-31T16:05:00Z'); // 1 August in Taipei
const TAIPEI_TODAY = { year: 2024, month: 8, day: 1 };

describe('NHI agent HTTP listeners (localhost:59001 / 59002)', () => {
  let rig: NhiAgentRig;
  let port: number;
  let httpsPort: number;

  /** As nhiicc.host.js sends it: `$.post(url, jsonText)` → form content type, JSON text body. */
  const post = (path: string, body?: unknown, origin: string | null = SITE, contentType = 'application/x-www-form-urlencoded; charset=UTF-8', p = port) =>
    request({
      port: p,
      method: 'POST',
      path,
      headers: { host: `localhost:${p}`, ...(origin !== null && { origin }), 'content-type': contentType },
      body: body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body),
    });
  const get = (path: string, origin: string | null = SITE, p = port): Promise<HttpAnswer & { raw?: Buffer }> =>
    new Promise((resolve, reject) => {
      // Binary-safe GET (the helper decodes as UTF-8).
      import('node:http').then(({ default: http }) => {
        const req = http.request({ host: '127.0.0.1', port: p, path, headers: { host: `localhost:${p}`, ...(origin !== null && { origin }) }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text: raw.toString('utf8'), json: () => JSON.parse(raw.toString('utf8')), raw });
          });
        });
        req.on('error', reject);
        req.end();
      }, reject);
    });

  beforeAll(async () => {
    rig = await NhiAgentRig.start();
    ({ port } = await rig.http({ now: () => NOW }));
    ({ port: httpsPort } = await rig.http({ https: true, now: () => NOW }));
  });

  afterAll(async () => {
    await rig.close();
  });

  afterEach(async () => {
    rig.audit.entries.length = 0;
    if (!rig.registry.readers().length) rig.registry.addReader(NHI_READER);
    if (!rig.registry.cardIn(NHI_READER)) await rig.registry.insertCard(NHI_READER, rig.card);
  });

  it('answers GetVersion, GetRandom and GetBasic with the fields of the official API and exact-origin CORS', async () => {
    const version = await post('/api/GetVersion');
    expect(version.status).toBe(200);
    expect(version.json()).toEqual({ result: '0000', version: '0001' });
    expect(version.headers['access-control-allow-origin']).toBe(SITE);
    expect(version.headers.server).toBe('NHIICC-/1.0');
    expect(version.headers['cache-control']).toBe('no-store');

    expect((await post('/api/GetRandom')).json()).toEqual({ result: '0000', random: expect.stringMatching(/^\d{16}$/) });

    expect((await post('/api/GetBasic', {}, SITE, 'application/json')).json()).toEqual({
      result: '0000',
      card_no: CARD_NO,
      as_id: 'A123456789',
      name: '王小明',
      birthday: '0740315',
      sex: 'M',
      card_termination: '0',
    });
    expect(rig.audit.entries).toEqual([{ origin: SITE, operation: 'nhi-http.GetBasic', card: 'nhi', reader: NHI_READER, result: 'ok' }]);
  });

  it('SignHC signs version + random (20 characters) or the bare random (16 digits, as AuthHC sends it)', async () => {
    const random = (await post('/api/GetRandom')).json().random as string;
    for (const sent of [`0001${random}`, random]) {
      const reply = (await post('/api/SignHC', { random: sent })).json();
      expect(reply.result).toBe('0000');
      expect(reply.sign).toHaveLength(256);
      expect(verify('sha256', Buffer.from(`0001${random}`), rig.sam.publicKey, parseHSign(reply.sign))).toBe(true);
    }
    // form fields work too
    const form = (await post('/api/SignHC', `random=0001${random}`)).json();
    expect(form.result).toBe('0000');
    for (const bad of [{}, { random: 'x' }, { random: `0002${random}` }, { random: 12 }]) expect((await post('/api/SignHC', bad)).json()).toEqual({ result: '9999' });
    expect((await post('/api/SignHC', '{not json')).json()).toEqual({ result: '9999' });
  });

  it('EncryptPwd and GetEncryptBasic round-trip through a relying site’s decryption', async () => {
    const pwd = (await post('/api/EncryptPwd', { pwd: 'secret12' })).json();
    expect(pwd).toEqual({ result: '0000', encrypt_pwd: expect.stringMatching(/^(?:[0-9A-F]{16})+$/) });
    expect(decryptNhiEnCrypt(pwd.encrypt_pwd, CARD_NO, TAIPEI_TODAY)).toBe('secret12');
    const basic = (await post('/api/GetEncryptBasic', { pwd: 'secret12' })).json();
    expect(decryptNhiSecureBasic(basic.encrypt_basic, TAIPEI_TODAY)).toBe(`${CARD_NO},A123456789,王小明,0740315,M,0`);
    expect((await post('/api/EncryptPwd', { pwd: '123' })).json()).toEqual({ result: '8009' });
    expect((await post('/api/EncryptPwd', {})).json()).toEqual({ result: '8009' });
  });

  it('answers failures with the official codes in `result`, still HTTP 200', async () => {
    rig.registry.removeCard(NHI_READER);
    for (const path of ['/api/GetBasic', '/api/SignHC', '/api/EncryptPwd', '/api/GetEncryptBasic']) {
      const reply = await post(path, { random: '00011234567890123456', pwd: 'abcdef' });
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({ result: '7004' });
    }
    rig.registry.removeReader(NHI_READER);
    expect((await post('/api/GetBasic')).json()).toEqual({ result: '7002' });
    expect((await post('/api/GetVersion')).json()).toEqual({ result: '0000', version: '0001' });
    expect((await post('/api/Nope')).json()).toEqual({ result: '9999' });
  });

  it('refuses origins outside the allow-list with the protocol’s refusal and no CORS', async () => {
    for (const origin of ['https://evil.example', 'http://www.example.gov.tw', 'null']) {
      const reply = await post('/api/GetBasic', {}, origin);
      expect(reply.status).toBe(403);
      expect(reply.json()).toEqual({ result: '8201' });
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    }
    const rebinding = await request({ port, method: 'POST', path: '/api/GetBasic', headers: { host: `attacker.example:${port}` } });
    expect(rebinding.status).toBe(403);
    expect(rig.audit.entries).toEqual([]);
  });

  it('refuses a site that was granted HiPKI only (through /addDomain)', async () => {
    const partner = 'https://www.partner.example.com';
    await rig.sites.grantCapability(partner, 'hipki');
    try {
      const reply = await post('/api/GetBasic', {}, partner);
      expect(reply.status).toBe(403);
      expect(reply.json()).toEqual({ result: '8201' });
      expect(rig.audit.entries).toEqual([]);
    } finally {
      await rig.sites.revoke(partner);
    }
  });

  it('answers Chrome’s preflight (Private Network Access) for allowed origins only', async () => {
    const preflight = (origin: string) =>
      request({
        port,
        method: 'OPTIONS',
        path: '/api/SignHC',
        headers: { host: `localhost:${port}`, origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type', 'access-control-request-private-network': 'true' },
      });
    const ok = await preflight(SITE);
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(SITE);
    expect(ok.headers['access-control-allow-private-network']).toBe('true');
    const refused = await preflight('https://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.headers['access-control-allow-private-network']).toBeUndefined();
  });

  it('packs the status JSON into the pixels of a fixed-width BMP, readable by allowed origins only', async () => {
    for (const path of ['/GetStatus.bmp', '/api/GetStatus.bmp']) {
      const bmp = await get(path);
      expect(bmp.status).toBe(200);
      expect(bmp.headers['content-type']).toBe('image/bmp');
      expect(bmp.headers['access-control-allow-origin']).toBe(SITE);
      expect(bmp.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(bmp.raw!.readInt32LE(18)).toBe(STATUS_BITMAP_WIDTH);
      expect(decodeJsonBitmap(bmp.raw!)).toEqual({ result: '0000', version: '0001' });
    }
    expect(decodeJsonBitmap((await get('/api/GetCardStatus.bmp')).raw!)).toEqual({ result: '0000' });
    rig.registry.removeCard(NHI_READER);
    const noCard = (await get('/GetCardStatus.bmp')).raw!;
    expect(decodeJsonBitmap(noCard)).toEqual({ result: '7004' });
    // the same size whatever it says
    expect(noCard.length).toBe((await get('/GetStatus.bmp')).raw!.length);
    rig.registry.removeReader(NHI_READER);
    expect(decodeJsonBitmap((await get('/GetStatus.bmp')).raw!)).toEqual({ result: '7002', version: '0001' });
    expect(decodeJsonBitmap((await get('/GetCardStatus.bmp')).raw!)).toEqual({ result: '7002' });

    const refused = await get('/GetStatus.bmp', 'https://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('serves auth.html and its script under a strict CSP', async () => {
    for (const path of ['/auth.html', '/api/auth.html']) {
      const page = await get(path, null);
      expect(page.status).toBe(200);
      expect(page.text).toContain('<script src="/auth.js"');
      expect(page.headers['content-security-policy']).toContain("default-src 'none'");
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(page.headers['x-frame-options']).toBe('DENY');
    }
    const script = await get('/auth.js', null);
    expect(script.text).toContain("postMessage(JSON.stringify(reply), origin)");
    expect(script.text).not.toMatch(/postMessage\([^)]*reply[^)]*'\*'/);
  });

  it('runs the popup flow only for its own page, and only for allowed openers', async () => {
    const own = `http://localhost:${port}`;
    const run = (body: unknown, origin: string | null, site?: string) =>
      request({
        port,
        method: 'POST',
        path: '/auth/run',
        headers: { host: `localhost:${port}`, 'content-type': 'application/json', ...(origin !== null && { origin }), ...(site && { 'sec-fetch-site': site }) },
        body: JSON.stringify(body),
      });
    const ok = await run({ origin: SITE, pwd: 'secret12' }, own, 'same-origin');
    expect(ok.status).toBe(200);
    const result = ok.json();
    expect(result).toMatchObject({ result: '0000', version: '0001', card_no: CARD_NO, as_id: 'A123456789', name: '王小明', birthday: '0740315', sex: 'M', card_termination: '0' });
    expect(verify('sha256', Buffer.from(`0001${result.random}`), rig.sam.publicKey, parseHSign(result.sign))).toBe(true);
    expect(decryptNhiEnCrypt(result.encrypt_pwd, CARD_NO, TAIPEI_TODAY)).toBe('secret12');
    expect(decryptNhiSecureBasic(result.encrypt_basic, TAIPEI_TODAY)).toContain('王小明');
    expect(new Set(rig.audit.entries.map((e) => e.origin))).toEqual(new Set([SITE]));

    rig.audit.entries.length = 0;
    // an opener outside the allow-list: refused before the card is touched
    expect((await run({ origin: 'https://evil.example', pwd: 'secret12' }, own)).json()).toEqual({ result: '8201' });
    expect((await run({ origin: own, pwd: 'secret12' }, own)).json()).toEqual({ result: '8201' });
    // anyone but the popup page itself: refused, even an allowed site calling directly
    expect((await run({ origin: SITE, pwd: 'secret12' }, SITE)).status).toBe(403);
    expect((await run({ origin: SITE, pwd: 'secret12' }, null)).status).toBe(403);
    expect((await run({ origin: SITE, pwd: 'secret12' }, own, 'cross-site')).status).toBe(403);
    expect(rig.audit.entries).toEqual([]);
  });

  it('speaks the same API over HTTPS on the second port', async () => {
    const reply = await request({
      port: httpsPort,
      method: 'POST',
      path: '/api/GetBasic',
      ca: rig.tls.ca,
      headers: { host: `localhost:${httpsPort}`, origin: SITE, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(reply.json()).toMatchObject({ result: '0000', card_no: CARD_NO });
    expect(rig.audit.entries[0]!.operation).toBe('nhi-https.GetBasic');
    const home = await request({ port: httpsPort, path: '/', ca: rig.tls.ca, headers: { host: `127.0.0.1:${httpsPort}` } });
    expect(home.text).toContain('已確認為可信任服務！');
  });
});
