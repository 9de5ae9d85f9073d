import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildNativeApp } from '../../../src/server/native/app.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { VirtualNhiCard, NHI_TEST_IDENTITY } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { maskName, maskNumber } from '../../../src/server/native/self-test.js';
import { testTls } from '../../helpers/tls.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';

let PORT = 0;
let OWN = '';
let CA = '';

/** Like fastify's inject, over the real listener (inject cannot load under Jest's ESM mode). */
async function call(options: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) {
  const headers = { ...options.headers };
  delete headers.host;
  const body = options.payload === undefined ? undefined : typeof options.payload === 'string' ? options.payload : JSON.stringify(options.payload);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await request({ port: PORT, path: options.url, method: options.method, headers, ca: CA, ...(body !== undefined && { body }) });
  return { statusCode: res.status, headers: res.headers, body: res.text, json: () => res.json() };
}

jest.setTimeout(60_000);


describe('the self-test page at https://127.0.0.1:39443/', () => {
  let dir: string;
  let app: FastifyInstance;
  let sites: SitesStore;
  let moica: VirtualMoicaGen2Card;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-selftest-'));
    PORT = await freePort();
    OWN = `https://127.0.0.1:${PORT}`;
    CA = (await testTls()).ca;
    sites = SitesStore.inStateDir(dir);
    await sites.allow('https://portal.example.org');
    await sites.grant('https://portal.example.org', 'nhi.read');
    const registry = new MockReaderRegistry();
    registry.addReader('NHI reader');
    registry.addReader('MOICA reader');
    await registry.insertCard('NHI reader', new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    moica = new VirtualMoicaGen2Card(await getTestPki(), { pin: '135790', serialNumber: 'TP03000099990001' });
    await registry.insertCard('MOICA reader', moica);
    app = await buildNativeApp({
      registry,
      policy: () => sites.policy(),
      port: PORT,
      https: await testTls(),
      logger: false,
      cards: { services: { nhi: new NhiService(registry), moica: new MoicaService(registry) }, sites },
      selfTest: { browsers: async () => [{ id: 'chromium', name: 'Chromium', installed: true, file: '/etc/chromium/policies/managed/cardbridge.json', state: 'missing', detail: 'no file' }] },
    });
    await app.listen({ port: PORT, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const host = {};

  it('masks names and numbers', () => {
    expect(maskName('王小明')).toBe('王*明');
    expect(maskName('王明')).toBe('王*');
    expect(maskName('Alice Example')).toBe('A***********e');
    expect(maskNumber('TP03000099990001')).toBe('TP03********0001');
    expect(maskNumber('000012345678')).toBe('0000****5678');
  });

  it('GET / is a trusted page in Traditional Chinese first, instead of 404 JSON', async () => {
    const page = await call({ method: 'GET', url: '/', headers: host });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('lang="zh-Hant"');
    expect(page.body).toMatch(/cardbridge 自我檢測/);
  });

  it('the page’s API: version, readers, sites and consents, browser policies — for its own page only', async () => {
    const state = await call({ method: 'GET', url: '/ui/api/self-test', headers: { ...host, 'sec-fetch-site': 'same-origin' } });
    expect(state.statusCode).toBe(200);
    const body = state.json();
    expect(body).toMatchObject({
      version: expect.any(String),
      serviceAvailable: true,
      readers: [{ name: 'NHI reader', card: { kind: 'nhi' } }, { name: 'MOICA reader', card: { kind: 'moica' } }],
      sites: { allowedOrigins: ['https://*.gov.tw', 'https://portal.example.org'], consents: { 'https://portal.example.org': { 'nhi.read': expect.any(String) } } },
      browsers: [{ id: 'chromium', state: 'missing' }],
    });
    const foreign = await call({ method: 'GET', url: '/ui/api/self-test', headers: { ...host, origin: 'https://portal.example.org' } });
    expect(foreign.statusCode).toBe(403);
    const crossSite = await call({ method: 'GET', url: '/ui/api/self-test', headers: { ...host, 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.statusCode).toBe(403);
  });

  it('"try reading my card" reads each card with the holder masked, never a PIN', async () => {
    const verifies = moica.received.filter((c) => c[1] === 0x20).length;
    const read = await call({ method: 'POST', url: '/ui/api/self-test/read', headers: { ...host, origin: OWN, 'content-type': 'application/json' }, payload: '{}' });
    expect(read.statusCode).toBe(200);
    const cards = read.json().cards as Array<Record<string, unknown>>;
    const pki = await getTestPki();
    expect(cards).toEqual([
      { reader: 'NHI reader', kind: 'nhi', holder: '王*明', number: maskNumber(NHI_TEST_IDENTITY.cardNumber) },
      { reader: 'MOICA reader', kind: 'moica', holder: maskName(pki.holder.name), number: 'TP03********0001', validUntil: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) },
    ]);
    expect(JSON.stringify(cards)).not.toContain(NHI_TEST_IDENTITY.idNumber);
    expect(moica.received.filter((c) => c[1] === 0x20).length).toBe(verifies);
    const forged = await call({ method: 'POST', url: '/ui/api/self-test/read', headers: { ...host, origin: 'https://portal.example.org', 'content-type': 'application/json' }, payload: '{}' });
    expect(forged.statusCode).toBe(403);
  });

  it('revokes a site from the page, and only from the page', async () => {
    const forged = await call({ method: 'POST', url: '/ui/api/self-test/revoke', headers: { ...host, origin: 'https://portal.example.org', 'content-type': 'application/json' }, payload: { origin: 'https://portal.example.org' } });
    expect(forged.statusCode).toBe(403);
    const noOrigin = await call({ method: 'POST', url: '/ui/api/self-test/revoke', headers: { ...host, 'content-type': 'application/json' }, payload: { origin: 'https://portal.example.org' } });
    expect(noOrigin.statusCode).toBe(403);
    expect(sites.policy().allows('https://portal.example.org')).toBe(true);
    const revoked = await call({ method: 'POST', url: '/ui/api/self-test/revoke', headers: { ...host, origin: OWN, 'content-type': 'application/json' }, payload: { origin: 'https://portal.example.org' } });
    expect(revoked.json()).toEqual({ revoked: true });
    expect(sites.policy().allows('https://portal.example.org')).toBe(false);
    expect(sites.hasConsent('https://portal.example.org', 'nhi.read')).toBe(false);
  });
});
