import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ConsoleMessage } from 'playwright-core';
import { main } from '../../src/cli/main.js';
import { buildHipkiApp, HIPKI_DEFAULT_PORT } from '../../src/server/hipki/app.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { NhiAgentRig } from '../helpers/nhi-agent.js';
import { captureIO } from '../helpers/capture-io.js';
import { type TrustedHome, trustedHome } from '../helpers/trusted-home.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

/**
 * Local Network Access, measured: a public https page (127.0.0.1:PAGE marked public with
 * --ip-address-space-overrides) loads p11Image.bmp from the HiPKI listener and opens the NHI
 * agent's wss :7777. Headless Chromium answers the permission prompt "no", so without a policy
 * both are blocked; with the managed policy written by `cardbridge browsers allow` both work.
 * Debian's Chromium reads /etc/chromium/policies/managed: the test writes there for real (under
 * the rig lock) and `cardbridge browsers remove` takes away exactly what was written.
 */
const CHROMIUM = '/usr/bin/chromium';
const MANAGED = '/etc/chromium/policies/managed';
const POLICY = join(MANAGED, 'cardbridge.json');

function pageHtml(hipkiPort: number, wsPort: number): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>TEST public page</title></head><body><script>
function image() {
  return new Promise(function (resolve) {
    var img = new Image();
    img.onload = function () { resolve('loaded ' + img.naturalWidth + 'x' + img.naturalHeight); };
    img.onerror = function () { resolve('blocked'); };
    img.src = 'http://localhost:${hipkiPort}/p11Image.bmp?_=' + Date.now();
  });
}
function socket() {
  return new Promise(function (resolve) {
    var ws = new WebSocket('wss://localhost:${wsPort}/echo');
    ws.onopen = function () { ws.close(); resolve('open'); };
    ws.onerror = function () { resolve('blocked'); };
  });
}
window.probe = function () { return Promise.all([image(), socket()]).then(function (r) { return { image: r[0], socket: r[1] }; }); };
</script></body></html>`;
}

describeWithTools('Local Network Access in Chromium: blocked for a public page, allowed by `cardbridge browsers allow`', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let state: string;
  let rig: NhiAgentRig;
  let hipki: FastifyInstance;
  let pages: Server;
  let origin: string;
  let hipkiPort: number;
  let wsPort: number;
  let pagePort: number;
  let trusted: TrustedHome | undefined;
  const hadManaged = existsSync(MANAGED);
  const hadPolicies = existsSync('/etc/chromium/policies');

  beforeAll(async () => {
    if (existsSync(POLICY)) throw new Error(`${POLICY} exists already (a real install?): not touching it`);
    delete process.env.CARDBRIDGE_BROWSERS_ROOT;
    trusted = await trustedHome('cardbridge-lna-');
    ({ dir, state } = trusted);
    rig = await NhiAgentRig.start({ stateDir: state });
    wsPort = (await rig.preferring((port) => rig.ws({ port }), 7777)).port;
    pages = createServer({ key: rig.tls.key, cert: rig.tls.cert }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(pageHtml(hipkiPort, wsPort));
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pagePort = (pages.address() as AddressInfo).port;
    origin = `https://127.0.0.1:${pagePort}`;
    // The page is an allowed site: cardbridge's own check passes, only the browser's is left.
    const io = captureIO();
    if ((await main(['sites', 'allow', origin, '--state-dir', state], io)) !== 0) throw new Error(io.stderr.join('\n'));
    const start = async (port: number) => {
      const app = await buildHipkiApp({ registry: rig.registry, moica: new MoicaService(rig.registry), sites: rig.sites, audit: rig.audit, port, logger: false });
      await app.listen({ port, host: '127.0.0.1' });
      return { app, port };
    };
    const started = await rig.preferring(start, HIPKI_DEFAULT_PORT);
    hipki = started.app;
    hipkiPort = started.port;
  });

  afterAll(async () => {
    const io = captureIO();
    const code = await main(['browsers', 'remove', '--browser', 'chromium', '--state-dir', state], io);
    await hipki?.close();
    await rig?.close();
    await new Promise((r) => pages?.close(r));
    trusted?.restore();
    rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(0);
    expect(existsSync(POLICY)).toBe(false);
    expect(existsSync(MANAGED)).toBe(hadManaged);
    expect(existsSync('/etc/chromium/policies')).toBe(hadPolicies);
  });

  async function probe(): Promise<{ result: { image: string; socket: string }; console: string[] }> {
    const { chromium } = await import('playwright-core');
    const context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--ip-address-space-overrides=127.0.0.1:${pagePort}=public`],
      env: { ...process.env, HOME: process.env.HOME! } as Record<string, string>,
    });
    try {
      const page = await context.newPage();
      const messages: string[] = [];
      page.on('console', (m: ConsoleMessage) => messages.push(m.text()));
      await page.goto(`${origin}/`);
      const result = (await page.evaluate('window.probe()')) as { image: string; socket: string };
      return { result, console: messages };
    } finally {
      await context.close();
    }
  }

  it('without the policy the public page cannot load p11Image.bmp nor open wss :7777', async () => {
    const { result, console } = await probe();
    expect(result).toEqual({ image: 'blocked', socket: 'blocked' });
    // The browser's own reasons, as a citizen's devtools show them (quoted in docs/compatibility.md).
    expect(console).toContainEqual(expect.stringContaining('Permission was denied for this request to access the `loopback` address space'));
    expect(console).toContainEqual(expect.stringContaining('ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS'));
  });

  it('with the policy from `cardbridge browsers allow` both work', async () => {
    const io = captureIO();
    expect(await main(['browsers', 'allow', '--browser', 'chromium', '--state-dir', state], io)).toBe(0);
    expect(JSON.parse(readFileSync(POLICY, 'utf8'))).toEqual({ LocalNetworkAccessAllowedForUrls: ['https://[*.]gov.tw', origin] });
    const { result, console } = await probe();
    expect(result.image).toMatch(/^loaded \d+x1$/);
    expect(result.socket).toBe('open');
    expect(console.filter((m) => /address space|LOCAL_NETWORK_ACCESS/.test(m))).toEqual([]);
  });
});
