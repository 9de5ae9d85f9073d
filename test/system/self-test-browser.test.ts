import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext } from 'playwright-core';
import { DEFAULT_FIREFOX_CA, browserStatus } from '../../src/browsers/policies.js';
import { ensureServerCertificate } from '../../src/certs/store.js';
import { SitesStore } from '../../src/config/sites-store.js';
import { VirtualMoicaGen2Card } from '../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki } from '../../src/emulator/moica/test-pki.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import { buildNativeApp } from '../../src/server/native/app.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { type TrustedHome, trustedHome } from '../helpers/trusted-home.js';
import { freePort } from '../helpers/ports.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const SCREENSHOT = new URL('../../docs/images/self-test.png', import.meta.url).pathname;

describeWithTools('the self-test page in Chromium', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let app: FastifyInstance;
  let sites: SitesStore;
  let context: BrowserContext;
  let url: string;
  let trusted: TrustedHome | undefined;

  beforeAll(async () => {
    trusted = await trustedHome('cardbridge-selftest-browser-');
    ({ dir } = trusted);
    const { state } = trusted;
    const tls = await ensureServerCertificate(state);
    sites = SitesStore.inStateDir(state);
    await sites.allow('https://portal.example.org');
    await sites.grant('https://portal.example.org', 'nhi.read');
    const registry = new MockReaderRegistry();
    registry.addReader('NHI reader');
    registry.addReader('MOICA reader');
    await registry.insertCard('NHI reader', new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    await registry.insertCard('MOICA reader', new VirtualMoicaGen2Card(await getTestPki(), { pin: '135790', serialNumber: 'TP03000099990001' }));
    // A throw-away root where Chromium is installed without cardbridge's policy.
    const root = join(dir, 'root');
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/chromium'), '');
    const port = await freePort();
    url = `https://127.0.0.1:${port}/`;
    app = await buildNativeApp({
      registry,
      policy: () => sites.policy(),
      port,
      https: { key: tls.key, cert: tls.cert },
      logger: false,
      cards: { services: { nhi: new NhiService(registry), moica: new MoicaService(registry) }, sites },
      selfTest: { browsers: () => browserStatus({ root, stateDir: state, origins: sites.allowedOrigins(), caPath: DEFAULT_FIREFOX_CA }) },
    });
    await app.listen({ port, host: '127.0.0.1' });
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--lang=zh-TW'],
      env: { ...process.env, HOME: process.env.HOME! } as Record<string, string>,
      viewport: { width: 720, height: 900 },
    });
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    trusted?.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('shows version, readers, browser policy and sites; reads the cards masked; revokes a site', async () => {
    const page = await context.newPage();
    await page.goto(url);
    // Functions, not strings: the page's CSP forbids eval.
    await page.waitForFunction(() => (globalThis as Json).document.getElementById('version').textContent !== '…', undefined, { timeout: 10_000 });
    const text = () => page.textContent('main').then((t) => t ?? '');
    expect(await text()).toContain('這個瀏覽器信任 cardbridge 的本機憑證');
    expect(await page.textContent('#readers')).toContain('NHI reader：健保卡 NHI card');
    expect(await page.textContent('#readers')).toContain('MOICA reader：自然人憑證 citizen certificate（第 2 代）');
    expect(await page.textContent('#browsers')).toContain('Chromium：未設定 · missing — sudo cardbridge browsers allow');
    expect(await page.textContent('#sites')).toContain('https://portal.example.org');

    await page.click('#read');
    await page.waitForFunction(() => /王\*明/.test((globalThis as Json).document.getElementById('cards').textContent), undefined, { timeout: 20_000 });
    const cards = (await page.textContent('#cards')) ?? '';
    expect(cards).toContain('NHI reader：健保卡 NHI card 王*明 · 0000****2222');
    expect(cards).toMatch(/MOICA reader：自然人憑證 citizen certificate 測\*一 · TP03\*{8}0001 · 有效至 valid until \d{4}-\d{2}-\d{2}/);
    expect(cards).not.toContain(NHI_TEST_IDENTITY.idNumber);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.click('#consents li button');
    await page.waitForFunction(() => /已撤銷/.test((globalThis as Json).document.getElementById('message').textContent), undefined, { timeout: 10_000 });
    expect(sites.policy().allows('https://portal.example.org')).toBe(false);
    expect(sites.consents()).toEqual({});
    await page.waitForFunction(() => !/portal/.test((globalThis as Json).document.getElementById('sites').textContent), undefined, { timeout: 10_000 });
    await page.close();
  });
});
