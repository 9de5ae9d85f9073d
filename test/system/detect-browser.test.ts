import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext } from 'playwright-core';
import { main } from '../../src/cli/main.js';
import { ensureServerCertificate } from '../../src/certs/store.js';
import { SitesStore } from '../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import { buildNativeApp } from '../../src/server/native/app.js';
import { buildHipkiApp } from '../../src/server/hipki/app.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { freePort } from '../helpers/ports.js';
import { captureIO } from '../helpers/capture-io.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const dist = (file: string) => readFileSync(new URL(`../../dist/client/${file}`, import.meta.url));

/**
 * A relying page with the client bundled (served from the page's own origin, as a site's build
 * would) and one importing the bridge's served copy; each calls detect() and shows the result.
 */
function page(bundled: boolean, base: string, httpProbe: string): string {
  const from = bundled ? '/client/index.js' : `${base}/v1/client.js`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>TEST relying page</title></head><body><p id="out"></p>
<script type="module">
import { detect } from '${from}';
window.detection = await detect({ base: '${base}', httpProbes: ['${httpProbe}'], timeoutMs: 5000 });
document.getElementById('out').textContent = window.detection.message;
</script></body></html>`;
}

describeWithTools('detect() in Chromium: each state produced for real', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let native: FastifyInstance;
  let hipki: FastifyInstance;
  const servers: Server[] = [];
  let allowedPage: number;
  let otherPage: number;
  let deadPage: number;
  let base: string;
  let httpProbe: string;
  let trustedHome: string;
  let untrustedHome: string;
  const savedHome = process.env.HOME;
  const savedSudo = process.env.SUDO_USER;

  async function pageServer(make: () => string): Promise<number> {
    const server = createServer((req, res) => {
      if (req.url === '/client/index.js' || req.url === '/client/messages.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' });
        res.end(dist(req.url.slice('/client/'.length)));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(make());
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-detect-'));
    trustedHome = join(dir, 'home');
    untrustedHome = join(dir, 'other-home');
    mkdirSync(untrustedHome);
    process.env.HOME = trustedHome;
    delete process.env.SUDO_USER;
    const state = join(dir, 'state');
    for (const action of ['init', 'trust']) {
      const io = captureIO();
      if ((await main(['certs', action, '--state-dir', state, '--system-store', 'none'], io)) !== 0) throw new Error(io.stderr.join('\n'));
    }
    const tls = await ensureServerCertificate(state);
    const port = await freePort();
    const hipkiPort = await freePort();
    base = `https://127.0.0.1:${port}`;
    httpProbe = `http://127.0.0.1:${hipkiPort}`;
    allowedPage = await pageServer(() => page(true, base, httpProbe));
    otherPage = await pageServer(() => page(true, base, httpProbe));
    const deadPort = await freePort();
    deadPage = await pageServer(() => page(true, `https://127.0.0.1:${deadPort}`, `http://127.0.0.1:${deadPort}`));
    const sites = SitesStore.inStateDir(state, [`http://127.0.0.1:${allowedPage}`]);
    const registry = new MockReaderRegistry();
    native = await buildNativeApp({ registry, policy: () => sites.policy(), port, https: { key: tls.key, cert: tls.cert }, logger: false });
    await native.listen({ port, host: '127.0.0.1' });
    hipki = await buildHipkiApp({ registry, moica: new MoicaService(registry), sites, port: hipkiPort, logger: false });
    await hipki.listen({ port: hipkiPort, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await native?.close();
    await hipki?.close();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    process.env.HOME = savedHome;
    if (savedSudo !== undefined) process.env.SUDO_USER = savedSudo;
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens `url` in a fresh browser (HOME decides which NSS database, i.e. whether the CA is trusted). */
  async function detectIn(url: string, options: { home?: string; publicPort?: number } = {}): Promise<{ state: string; message: string; hint?: string; shown: string }> {
    const { chromium } = await import('playwright-core');
    const args = options.publicPort ? [...CHROMIUM_ARGS, `--ip-address-space-overrides=127.0.0.1:${options.publicPort}=public`] : CHROMIUM_ARGS;
    const context: BrowserContext = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args,
      env: { ...process.env, HOME: options.home ?? trustedHome } as Record<string, string>,
    });
    try {
      const tab = await context.newPage();
      await tab.goto(url);
      await tab.waitForFunction('window.detection !== undefined', undefined, { timeout: 30_000 });
      const detection = (await tab.evaluate('window.detection')) as { state: string; message: string; hint?: string };
      return { ...detection, shown: (await tab.textContent('#out')) ?? '' };
    } finally {
      await context.close();
    }
  }

  it('Ready: running, trusted, this site allowed', async () => {
    const d = await detectIn(`http://127.0.0.1:${allowedPage}/`);
    expect(d).toMatchObject({ state: 'Ready', shown: 'cardbridge 已就緒 (cardbridge is ready)' });
    expect(d.hint).toBeUndefined();
  });

  it('SiteNotAllowed: running and trusted, but this site is not on the allow-list', async () => {
    const d = await detectIn(`http://127.0.0.1:${otherPage}/`);
    expect(d).toMatchObject({ state: 'SiteNotAllowed', hint: expect.stringContaining(`sudo cardbridge sites allow http://127.0.0.1:${otherPage}`) });
  });

  it('SiteNotAllowed from the served copy too: client.js imports from the bridge on a site that is not allowed', async () => {
    const served = await pageServer(() => page(false, base, httpProbe));
    expect(await detectIn(`http://127.0.0.1:${served}/`)).toMatchObject({ state: 'SiteNotAllowed' });
  });

  it('CertificateUntrusted: a browser whose NSS database lacks the CA; the http listener answers', async () => {
    const d = await detectIn(`http://127.0.0.1:${allowedPage}/`, { home: untrustedHome });
    expect(d).toMatchObject({ state: 'CertificateUntrusted', hint: expect.stringContaining('sudo cardbridge certs trust') });
  });

  it('NotRunning: nothing listens; the hint names the system unit and the self-test page', async () => {
    const d = await detectIn(`http://127.0.0.1:${deadPage}/`);
    expect(d).toMatchObject({ state: 'NotRunning', hint: expect.stringContaining('sudo systemctl enable --now cardbridge') });
    expect(d.hint).toContain('https://127.0.0.1:39443/');
  });

  it('BlockedByBrowser: the page is public and Local Network Access is not granted', async () => {
    const d = await detectIn(`http://127.0.0.1:${allowedPage}/`, { publicPort: allowedPage });
    expect(d).toMatchObject({ state: 'BlockedByBrowser', hint: expect.stringContaining('sudo cardbridge browsers allow') });
  });
});
