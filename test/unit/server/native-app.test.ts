import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import { buildNativeApp } from '../../../src/server/native/app.js';
import { OriginPolicy } from '../../../src/config/origin-policy.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { NHI_APPLET_AID } from '../../../src/cards/nhi/commands.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';
import { testTls } from '../../helpers/tls.js';
import { checkPeer } from '../../../src/server/security/guard.js';
import { allowedHosts } from '../../../src/server/security/loopback.js';

const GOV = 'https://www.nhi.gov.tw';

async function setup(port: number) {
  const registry = new MockReaderRegistry();
  registry.addReader('R0');
  await registry.insertCard('R0', new GenericTestCard({ aids: [NHI_APPLET_AID] }));
  const { key, cert } = await testTls();
  const app = await buildNativeApp({ registry, policy: () => new OriginPolicy(['https://*.gov.tw']), port, https: { key, cert }, logger: false, rateLimit: { perSecond: 1, burst: 5 } });
  await app.listen({ port, host: '127.0.0.1' });
  return { registry, app };
}

describe('native API over HTTP', () => {
  let app: FastifyInstance;
  let registry: MockReaderRegistry;
  let port: number;
  let ca: string;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => request({ port, path, headers, method, ca });
  beforeEach(async () => {
    ({ ca } = await testTls());
    port = await freePort();
    ({ app, registry } = await setup(port));
  });
  afterEach(() => app.close());

  it('reports status without personal data', async () => {
    const res = await get('/v1/status');
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body).toEqual({ version: expect.any(String), api: 'v1', serviceAvailable: true, readers: [{ name: 'R0', cardPresent: true, card: { kind: 'nhi', label: 'health insurance card (健保卡)' } }] });
  });

  it('lists readers with ATR', async () => {
    const res = await get('/v1/readers');
    expect(res.json()).toEqual({ readers: [{ name: 'R0', cardPresent: true, atr: '3B8880010000000000000000', card: { kind: 'nhi', label: 'health insurance card (健保卡)' } }] });
    registry.removeCard('R0');
    expect((await get('/v1/readers')).json().readers[0]).toEqual({ name: 'R0', cardPresent: false, atr: null, card: null });
  });

  it('refuses a peer that is not on this computer', () => {
    // A loopback listener cannot receive such a peer; the check guards a misconfigured bind.
    const options = { hosts: allowedHosts(['127.0.0.1'], port), policy: () => new OriginPolicy([]) };
    expect(checkPeer(options, '192.168.1.20', `127.0.0.1:${port}`, undefined)).toMatchObject({ ok: false, error: { code: 'NotAllowedOrigin' } });
    expect(checkPeer(options, '127.0.0.1', `127.0.0.1:${port}`, undefined)).toEqual({ ok: true });
  });

  it('refuses an unexpected Host (DNS rebinding)', async () => {
    for (const h of [`attacker.example:${port}`, 'localhost:8080', 'localhost']) {
      const res = await get('/v1/status', { host: h });
      expect(res.status).toBe(403);
      expect(res.json().detail).toContain('Unexpected Host');
    }
    expect((await get('/v1/status', { host: `localhost:${port}` })).status).toBe(200);
  });

  it('refuses origins outside the allow-list, and gives exact-origin CORS to allowed ones', async () => {
    const refused = await get('/v1/status', { origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    const httpGov = await get('/v1/status', { origin: 'http://www.nhi.gov.tw' });
    expect(httpGov.status).toBe(403);
    const allowed = await get('/v1/status', { origin: GOV });
    expect(allowed.status).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe(GOV);
    expect(allowed.headers.vary).toContain('Origin');
  });

  it('answers preflights for allowed origins, with Private Network Access', async () => {
    const res = await get('/v1/status', { origin: GOV, 'access-control-request-method': 'GET', 'access-control-request-private-network': 'true' }, 'OPTIONS');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(GOV);
    expect(res.headers['access-control-allow-private-network']).toBe('true');
    const refused = await get('/v1/status', { origin: 'https://evil.example', 'access-control-request-private-network': 'true' }, 'OPTIONS');
    expect(refused.status).toBe(403);
    expect(refused.headers['access-control-allow-private-network']).toBeUndefined();
  });

  it('rate-limits per origin', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await get("/v1/status", { origin: GOV })).status);
    expect(codes.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const limited = await get('/v1/status', { origin: GOV });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.json().code).toBe('RateLimited');
    // another origin has its own bucket
    expect((await get('/v1/status', { origin: 'https://www.gov.tw' })).status).toBe(200);
  });

  it('a flood without an Origin cannot rate-limit cardbridge’s own pages, an allowed site or local programs', async () => {
    const own = `https://127.0.0.1:${port}`;
    // a foreign page's <img> flood: cross-site, no Origin header
    const flood = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' };
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await get('/v1/status', flood)).status);
    expect(codes.slice(5)).toEqual([429, 429]);
    // the approval window: its navigation (no Origin) and its own fetches (Origin = own)
    expect((await get('/v1/status', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' })).status).toBe(200);
    expect((await get('/v1/status', { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate' })).status).toBe(200);
    expect((await get('/v1/status', { origin: own, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect((await get('/v1/status', { origin: GOV })).status).toBe(200);
    expect((await get('/v1/status')).status).toBe(200); // a local program (curl, cardbridge wait)
  });

  it('answers unknown paths with a problem, not an HTML page', async () => {
    const res = await get('/v2/nope');
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ status: 404, detail: 'No such endpoint: GET /v2/nope' });
  });

  it('serves the browser client library as an ES module whose only import is the catalogue next to it', async () => {
    // npm test and npm run test:unit build dist/ first
    const res = await get('/v1/client.js', { origin: GOV });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/javascript');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.text).toMatch(/export (function connect|\{[^}]*\bconnect\b)/);
    expect(res.text.match(/^import .*$/gm)).toEqual(["import { HINTS, MESSAGES, SELF_TEST_URL, hintText, messageText } from './messages.js';"]);
    expect((await get('/v1/messages.js')).text).not.toMatch(/^import /m);
  });

  it('serves an OpenAPI description of its routes', async () => {
    const doc = (await get('/v1/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/status', '/v1/readers', '/v1/events']));
  });
});

describe('native events WebSocket', () => {
  it('sends a snapshot then live events over WSS; refuses bad Host and Origin on the upgrade', async () => {
    const { ca } = await testTls();
    const port = await freePort();
    const { app, registry } = await setup(port);
    try {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/v1/events`, { origin: GOV, ca });
      const messages: unknown[] = [];
      const got = (n: number) =>
        new Promise<void>((resolve) => {
          const check = () => (messages.length >= n ? resolve() : setTimeout(check, 5));
          check();
        });
      ws.on('message', (m) => messages.push(JSON.parse(m.toString())));
      await got(1);
      expect(messages[0]).toMatchObject({ type: 'snapshot', readers: [{ name: 'R0', cardPresent: true }] });
      registry.removeCard('R0');
      await got(2);
      expect(messages[1]).toEqual({ type: 'card-removed', reader: 'R0' });
      ws.close();

      const refused = (url: string, opts: WebSocket.ClientOptions) =>
        new Promise<number>((resolve) => {
          const bad = new WebSocket(url, { ...opts, ca });
          bad.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          bad.on('error', () => resolve(-1));
        });
      expect(await refused(`wss://127.0.0.1:${port}/v1/events`, { origin: 'https://evil.example' })).toBe(403);
      expect(await refused(`wss://127.0.0.1:${port}/v1/events`, { headers: { host: `attacker.example:${port}` } })).toBe(403);
      expect(await refused(`wss://127.0.0.1:${port}/v1/elsewhere`, { origin: GOV })).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('detection without CORS: the probe image and the public client files', () => {
  let app: FastifyInstance;
  let port: number;
  let ca: string;
  const get = (path: string, headers: Record<string, string> = {}) => request({ port, path, headers, ca });
  beforeEach(async () => {
    ({ ca } = await testTls());
    port = await freePort();
    ({ app } = await setup(port));
  });
  afterEach(() => app.close());

  it('/v1/probe.gif answers any page that sends no Origin (a plain <img>), and CORS-mode only for allowed sites', async () => {
    const plain = await get('/v1/probe.gif');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('image/gif');
    expect(plain.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(plain.headers['cache-control']).toBe('no-store');
    const allowed = await get('/v1/probe.gif', { origin: GOV });
    expect([allowed.status, allowed.headers['access-control-allow-origin']]).toEqual([200, GOV]);
    const other = await get('/v1/probe.gif', { origin: 'https://evil.example' });
    expect(other.status).toBe(403);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('serves client.js and messages.js to every origin (public code, no data), so a page can import them before it is allowed', async () => {
    for (const path of ['/v1/client.js', '/v1/messages.js']) {
      const res = await get(path, { origin: 'https://evil.example' });
      expect([path, res.status, res.headers['access-control-allow-origin']]).toEqual([path, 200, '*']);
      expect(res.headers['content-type']).toContain('text/javascript');
    }
    expect((await get('/v1/messages.js')).text).toContain('讀卡機中沒有卡片');
    // everything else still refuses that origin
    expect((await get('/v1/status', { origin: 'https://evil.example' })).status).toBe(403);
  });
});
