import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { main } from '../../src/cli/main.js';
import { DEFAULT_CONFIG } from '../../src/daemon/config.js';
import { type RunningDaemon, startDaemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import { DEMO_MOICA_PIN } from '../../src/demo/mock-control.js';
import { buildDemoSite } from '../../src/demo/site/demo-site.js';
import { TEST_HOLDER } from '../../src/emulator/moica/test-pki.js';
import { NHI_TEST_IDENTITY } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { captureIO } from '../helpers/capture-io.js';
import { freePort } from '../helpers/ports.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'demo');

describeWithTools('the demo (npm start) in Chromium', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let daemon: RunningDaemon;
  let site: FastifyInstance;
  let context: BrowserContext;
  let siteUrl: string;
  let bridge: string;
  let stranger: Server;
  let strangerUrl: string;
  const savedHome = process.env.HOME;
  const savedSudo = process.env.SUDO_USER;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-demo-browser-'));
    process.env.HOME = join(dir, 'home');
    delete process.env.SUDO_USER;
    const stateDir = join(dir, 'state');
    const nativePort = await freePort();
    const sitePort = await freePort();
    const config = structuredClone(DEFAULT_CONFIG);
    for (const settings of Object.values(config.listeners)) settings.enabled = false;
    config.listeners.native = { enabled: true, port: nativePort };
    const hipkiPort = await freePort();
    config.listeners.hipki = { enabled: true, port: hipkiPort };
    siteUrl = `https://localhost:${sitePort}`;
    daemon = await startDaemon({ config, mock: true, logger: createLogger('silent'), stateDir, extraOrigins: [siteUrl] });
    bridge = `https://127.0.0.1:${nativePort}`;
    site = await buildDemoSite({ port: sitePort, tls: daemon.tls, bridge, hipki: `http://localhost:${hipkiPort}`, samPublicKey: daemon.mock!.sam.publicKey });
    await site.listen({ port: sitePort, host: '127.0.0.1' });
    // What the demo tells newcomers to run: trust the demo's CA for this user only.
    const io = captureIO();
    if ((await main(['certs', 'trust', '--state-dir', stateDir, '--system-store', 'none'], io)) !== 0) throw new Error(io.stderr.join('\n'));

    // A site that is not on the allow-list, calling the bridge the same way.
    const strangerPort = await freePort();
    strangerUrl = `http://localhost:${strangerPort}`;
    stranger = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<pre id="out"></pre><script>fetch('${bridge}/v1/status').then((r) => r.status, (e) => 'refused: ' + e.message).then((s) => { document.getElementById('out').textContent = String(s); });</script>`);
    });
    await new Promise<void>((r) => stranger.listen(strangerPort, '127.0.0.1', r));

    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 900, height: 700 },
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      env: { ...process.env, HOME: process.env.HOME! } as Record<string, string>,
    });
  });

  afterAll(async () => {
    await context?.close();
    await site?.close();
    await daemon?.stop();
    await new Promise((r) => stranger?.close(r));
    process.env.HOME = savedHome;
    if (savedSudo !== undefined) process.env.SUDO_USER = savedSudo;
    rmSync(dir, { recursive: true, force: true });
  });

  async function windowFrom(page: Page, button: string): Promise<Page> {
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(button)]);
    await popup.waitForURL(/\/ui\/approve\//);
    await popup.waitForSelector('#request:not([hidden])');
    return popup;
  }

  const resultOf = async (page: Page, cls: 'ok' | 'error') => {
    await page.waitForSelector(`#result.${cls}`, { timeout: 20_000 });
    return (await page.textContent('#result'))!;
  };

  it('自然人憑證 login: a wrong PIN shows tries left in cardbridge’s window, the right one logs in', async () => {
    const page = await context.newPage();
    await page.goto(`${siteUrl}/moica`);
    await page.screenshot({ path: join(ARTIFACTS, '1-moica-login.png'), fullPage: true });
    const popup = await windowFrom(page, '#modern');
    expect(await popup.textContent('#origin')).toBe(siteUrl);
    await popup.fill('#pin', '000000');
    await popup.click('#sign');
    await popup.waitForSelector('#tries:not([hidden])');
    expect(await popup.textContent('#tries')).toContain('2 tries left');
    await popup.screenshot({ path: join(ARTIFACTS, '2-moica-window-wrong-pin.png') });
    await popup.fill('#pin', DEMO_MOICA_PIN);
    await popup.click('#sign');
    const text = await resultOf(page, 'ok');
    expect(text).toContain(`Logged in: ${TEST_HOLDER.name}`);
    expect(text).toContain(`…${TEST_HOLDER.idLastFour}`);
    await page.screenshot({ path: join(ARTIFACTS, '3-moica-logged-in.png'), fullPage: true });
    await page.close();
  });

  it('the same 自然人憑證 login the legacy way: HiPKI popupForm, PKCS7, PIN from the page', async () => {
    const page = await context.newPage();
    await page.goto(`${siteUrl}/moica`);
    await page.fill('#legacy-pin', DEMO_MOICA_PIN);
    await page.click('#legacy');
    const text = await resultOf(page, 'ok');
    expect(text).toContain(`登入成功（HiPKI PKCS7）Logged in: ${TEST_HOLDER.name}`);
    await page.screenshot({ path: join(ARTIFACTS, '3b-moica-legacy-hipki.png'), fullPage: true });
    await page.close();
  });

  it('健保卡 query login: the fields fill after consent, then H_Sign verifies', async () => {
    const page = await context.newPage();
    await page.goto(`${siteUrl}/nhi`);
    const popup = await windowFrom(page, '#read');
    await popup.screenshot({ path: join(ARTIFACTS, '4-nhi-consent.png') });
    await popup.click('#allow');
    await resultOf(page, 'ok');
    expect(await page.textContent('#cardNumber')).toBe(NHI_TEST_IDENTITY.cardNumber);
    expect(await page.textContent('#name')).toBe(NHI_TEST_IDENTITY.name);
    expect(await page.textContent('#idNumber')).toBe(NHI_TEST_IDENTITY.idNumber);
    await page.evaluate("document.getElementById('result').className = 'result'");
    await page.click('#hsign');
    expect(await resultOf(page, 'ok')).toMatch(/驗證成功 H_Sign verified for 0001\d{16}/);
    await page.screenshot({ path: join(ARTIFACTS, '5-nhi-verified.png'), fullPage: true });
    await page.close();
  });

  it('the status page follows card removal and insertion from the control panel', async () => {
    const status = await context.newPage();
    await status.goto(`${siteUrl}/status`);
    const row = (reader: string) => `tr[data-reader="${reader}"] td:nth-child(2)`;
    await status.waitForSelector(row('Mock Reader 0'));
    expect(await status.textContent(row('Mock Reader 0'))).toContain('健保卡');
    const control = await context.newPage();
    await control.goto(`${siteUrl}/control`);
    await control.waitForSelector('tr[data-reader="Mock Reader 0"]');
    await control.click('tr[data-reader="Mock Reader 0"] button:has-text("Remove card")');
    await status.waitForFunction(`document.querySelector('${row('Mock Reader 0')}').textContent === '—'`);
    await status.screenshot({ path: join(ARTIFACTS, '6-status-card-removed.png') });
    await control.click('tr[data-reader="Mock Reader 0"] button:has-text("Insert nhi")');
    await status.waitForFunction(`document.querySelector('${row('Mock Reader 0')}').textContent.includes('健保卡')`);
    await control.screenshot({ path: join(ARTIFACTS, '7-control-panel.png') });
    await control.close();
    await status.close();
  });

  it('a site that is not on the allow-list gets nothing', async () => {
    const page = await context.newPage();
    await page.goto(strangerUrl);
    await page.waitForFunction("document.getElementById('out').textContent !== ''");
    // The bridge answers 403 without CORS headers, so the page cannot even read the answer.
    expect(await page.textContent('#out')).toMatch(/^refused: /);
    await page.close();
  });
});
