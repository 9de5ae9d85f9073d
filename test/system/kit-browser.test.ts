import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type MockBridge, MOCK_READERS, approvalWindow, approve, deny, startMockBridge } from '../../src/testing/index.js';
import { AuthTokenValidator } from '../../src/verify/index.js';
import { freePort } from '../helpers/ports.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

/** A relying page as a site would write it: the client from the bridge, a login button. */
function loginPage(bridge: string): string {
  return `<!doctype html><meta charset="utf-8"><title>relying site</title>
<button id="login">自然人憑證登入</button><pre id="out"></pre>
<script type="module">
import { connect } from '${bridge}/v1/client.js';
const bridge = connect({ base: '${bridge}' });
document.getElementById('login').onclick = () => bridge.authenticate(new URLSearchParams(location.search).get('nonce')).then(
  (token) => { document.getElementById('out').textContent = JSON.stringify({ token }); },
  (e) => { document.getElementById('out').textContent = JSON.stringify({ error: e.code }); });
</script>`;
}

// Needs only Chromium: cardbridge/testing makes the browser trust the daemon by its key, no certutil.
describeWithTools('cardbridge/testing drives a relying site’s login in Chromium', ['chromium'], ['playwright-core'], () => {
  let bridge: MockBridge;
  let browser: Browser;
  let pageServer: Server;
  let site: string;
  let validator: AuthTokenValidator;
  let profile: string;

  beforeAll(async () => {
    const port = await freePort();
    site = `http://localhost:${port}`;
    bridge = await startMockBridge({ origins: [site] });
    pageServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(bridge.url));
    });
    await new Promise<void>((r) => pageServer.listen(port, '127.0.0.1', r));
    validator = new AuthTokenValidator({ trustAnchors: [bridge.pki.root], intermediates: [bridge.pki.issuing] });
    profile = mkdtempSync(join(tmpdir(), 'cardbridge-kit-browser-'));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', ...bridge.chromiumArgs], env: { ...process.env, HOME: profile } as Record<string, string> });
  });

  afterAll(async () => {
    await browser?.close();
    await bridge?.stop();
    await new Promise((r) => pageServer?.close(r));
    rmSync(profile, { recursive: true, force: true });
  });

  async function clickLogin(nonce: string): Promise<{ page: Page; popup: Page }> {
    const page = await browser.newPage();
    await page.goto(`${site}/?nonce=${nonce}`);
    await page.waitForSelector('script[type=module]', { state: 'attached' });
    const popup = await approvalWindow(page, () => page.click('#login'));
    return { page, popup };
  }

  async function outcome(page: Page): Promise<{ token?: unknown; error?: string }> {
    await page.waitForFunction("document.getElementById('out').textContent !== ''", undefined, { timeout: 20_000 });
    return JSON.parse((await page.textContent('#out'))!);
  }

  it('approve(popup, { pin }) logs in; the back end verifies the token against the test PKI', async () => {
    const nonce = await validator.issueNonce();
    const { page, popup } = await clickLogin(nonce);
    await approve(popup, { pin: bridge.pin });
    const { token } = await outcome(page);
    expect(await validator.validate(token, { origin: site, nonce })).toMatchObject({ name: bridge.pki.holder.name, idLast4: bridge.pki.holder.idLastFour });
    await page.close();
  });

  it('deny(popup) leaves the page with Cancelled', async () => {
    const { page, popup } = await clickLogin(await validator.issueNonce());
    await deny(popup);
    expect(await outcome(page)).toEqual({ error: 'Cancelled' });
    await page.close();
  });

  it('card control: a wrong PIN costs a try and resetPin gives it back; remove and insert change what the page sees', async () => {
    const { page, popup } = await clickLogin(await validator.issueNonce());
    await popup.fill('#pin', '000000');
    await popup.click('#sign');
    await popup.waitForSelector('#tries:not([hidden])');
    expect((await bridge.state()).find((r) => r.name === MOCK_READERS.moica)?.triesLeft).toBe(2);
    await deny(popup);
    await outcome(page);
    await bridge.resetPin();
    expect((await bridge.state()).find((r) => r.name === MOCK_READERS.moica)?.triesLeft).toBe(3);

    await bridge.remove();
    expect((await bridge.state()).find((r) => r.name === MOCK_READERS.moica)?.card).toBeNull();
    const page2 = await browser.newPage();
    await page2.goto(`${site}/?nonce=${await validator.issueNonce()}`);
    await page2.waitForSelector('script[type=module]', { state: 'attached' });
    await page2.click('#login');
    // the 健保卡 is still in the other reader: no 自然人憑證 to log in with
    expect((await outcome(page2)).error).toBe('WrongCard');

    await bridge.insert(MOCK_READERS.moica, 'moica-gen1');
    const nonce = await validator.issueNonce();
    const again = await clickLogin(nonce);
    await approve(again.popup, { pin: bridge.pin });
    expect(await validator.validate((await outcome(again.page)).token, { origin: site, nonce })).toMatchObject({ name: bridge.pki.holder.name });
    for (const p of [page, page2, again.page]) await p.close();
  });
});
