import { jest } from '@jest/globals';
import { X509Certificate, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { ensureServerCertificate } from '../../src/certs/index.js';
import { SitesStore } from '../../src/config/sites-store.js';
import { TEST_HOLDER, getTestPki } from '../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen2Card } from '../../src/emulator/moica/virtual-moica-gen2.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import { buildNativeApp } from '../../src/server/native/app.js';
import { TriesTracker } from '../../src/services/pin/tries-tracker.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { AuthTokenValidator } from '../../src/verify/index.js';
import { type TrustedHome, trustedHome } from '../helpers/trusted-home.js';
import { freePort } from '../helpers/ports.js';
import { describeWithTools } from '../helpers/tools.js';
import { approve, chooseCard } from '../../src/testing/index.js';

jest.setTimeout(120_000);

const PIN = '135790';

/** A relying page written as a site would: the client from the bridge, one button per call. */
function relyingPage(bridge: string): string {
  return `<!doctype html><meta charset="utf-8"><title>relying site</title>
<button id="nhi">健保卡</button><button id="sign">簽章</button><button id="login">自然人憑證登入</button>
<pre id="out"></pre>
<script type="module">
import { connect } from '${bridge}/v1/client.js';
const bridge = connect({ base: '${bridge}' });
const out = document.getElementById('out');
const show = (p) => p.then((r) => { out.textContent = JSON.stringify({ ok: r }); },
                            (e) => { out.textContent = JSON.stringify({ error: { code: e.code, detail: e.detail, triesLeft: e.triesLeft } }); });
document.getElementById('nhi').onclick = () => show(bridge.readNhi());
document.getElementById('sign').onclick = () => show(bridge.sign({ data: 'hello from the page', hash: 'sha256', format: 'pkcs1' }));
document.getElementById('login').onclick = () => show(bridge.authenticate(new URLSearchParams(location.search).get('nonce')));
</script>`;
}

describeWithTools('cardbridge’s consent and PIN window in Chromium', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let app: FastifyInstance;
  let pageServer: Server;
  let context: BrowserContext;
  let sites: SitesStore;
  let bridge: string;
  let site: string;
  let validator: AuthTokenValidator;
  let moicaCard: VirtualMoicaGen2Card;
  let registry: MockReaderRegistry;
  let moica: MoicaService;
  let trusted: TrustedHome | undefined;

  beforeAll(async () => {
    trusted = await trustedHome('cardbridge-native-browser-');
    ({ dir } = trusted);
    const { state } = trusted;
    const tls = await ensureServerCertificate(state);

    const pagePort = await freePort();
    site = `http://localhost:${pagePort}`;
    sites = SitesStore.inStateDir(state, [site]);
    const port = await freePort();
    bridge = `https://127.0.0.1:${port}`;
    pageServer = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(relyingPage(bridge));
    });
    await new Promise<void>((r) => pageServer.listen(pagePort, '127.0.0.1', r));

    const pki = await getTestPki();
    registry = new MockReaderRegistry();
    registry.addReader('NHI');
    registry.addReader('MOICA');
    await registry.insertCard('NHI', new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    moicaCard = new VirtualMoicaGen2Card(pki, { pin: PIN, triesLeft: 3, maxTries: 3 });
    await registry.insertCard('MOICA', moicaCard);
    app = await buildNativeApp({
      registry,
      policy: () => sites.policy(),
      port,
      https: { key: tls.key, cert: tls.cert },
      logger: false,
      // One service for every path, as in the daemon: the HiPKI listener would share it.
      cards: { services: { nhi: new NhiService(registry), moica: (moica = new MoicaService(registry, { tries: TriesTracker.inStateDir(state) })) }, sites },
    });
    await app.listen({ port, host: '127.0.0.1' });
    validator = new AuthTokenValidator({ trustAnchors: [pki.root.pem], intermediates: [pki.issuing.pem] });

    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      env: { ...process.env, HOME: process.env.HOME! } as Record<string, string>,
    });
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    await new Promise((r) => pageServer?.close(r));
    trusted?.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  async function openSite(query = ''): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${site}/${query}`);
    await page.waitForSelector('script[type=module]', { state: 'attached' });
    return page;
  }

  async function result(page: Page): Promise<{ ok?: any; error?: { code: string; triesLeft?: number } }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    // Strings, not functions: the repository's TypeScript has no DOM library.
    await page.waitForFunction("document.getElementById('out').textContent !== ''", undefined, { timeout: 20_000 });
    return JSON.parse((await page.textContent('#out'))!);
  }

  async function clickForWindow(page: Page, button: string): Promise<Page> {
    const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(button)]);
    await popup.waitForURL(/\/ui\/approve\//);
    await popup.waitForSelector('#request:not([hidden])');
    return popup;
  }

  it('shows the asking site, and a deny leaves the page with Cancelled', async () => {
    const page = await openSite();
    const popup = await clickForWindow(page, '#nhi');
    expect(await popup.textContent('#origin')).toBe(site);
    expect(await popup.textContent('#card')).toContain('健保卡');
    await popup.click('#deny');
    expect(await result(page)).toEqual({ error: expect.objectContaining({ code: 'Cancelled' }) });
    expect(sites.hasConsent(site, 'nhi.read')).toBe(false);
    await page.close();
  });

  it('an allow gives the page the card holder data, and is remembered', async () => {
    const page = await openSite();
    const popup = await clickForWindow(page, '#nhi');
    await popup.click('#allow');
    const got = await result(page);
    expect(got.ok).toMatchObject({ name: NHI_TEST_IDENTITY.name, idNumber: NHI_TEST_IDENTITY.idNumber, cardNumber: NHI_TEST_IDENTITY.cardNumber });
    // remembered: the next read needs no window
    await page.evaluate("document.getElementById('out').textContent = ''");
    await page.click('#nhi');
    expect((await result(page)).ok.name).toBe(NHI_TEST_IDENTITY.name);
    expect(context.pages().filter((p) => p.url().includes('/ui/approve/'))).toHaveLength(0);
    await page.close();
  });

  it('"this time only" gives the page the data once; the next read asks again', async () => {
    await sites.revoke(site); // forget the consent the previous test remembered
    await sites.allow(site);
    const page = await openSite();
    const popup = await clickForWindow(page, '#nhi');
    expect(await popup.textContent('#rememberdays')).toBe('90');
    await popup.click('#once');
    expect((await result(page)).ok.name).toBe(NHI_TEST_IDENTITY.name);
    expect(sites.hasConsent(site, 'nhi.read')).toBe(false);
    await page.evaluate("document.getElementById('out').textContent = ''");
    const again = await clickForWindow(page, '#nhi'); // asked again
    await again.click('#deny');
    expect((await result(page)).error?.code).toBe('Cancelled');
    await page.close();
  });

  it('closing the window cancels the request', async () => {
    const page = await openSite();
    const popup = await clickForWindow(page, '#sign');
    await popup.close();
    expect((await result(page)).error?.code).toBe('Cancelled');
    await page.close();
  });

  it('when the page that asked goes away, the window says so within seconds and stays open; the card is free again', async () => {
    const page = await openSite();
    const popup = await clickForWindow(page, '#sign');
    await page.close(); // the tab is closed: its long poll drops
    // a locator, not a string function: the window's CSP forbids eval
    await popup.locator('#message', { hasText: 'went away' }).waitFor({ timeout: 6_000 });
    expect(await popup.textContent('#message')).toContain('無法完成');
    expect(popup.isClosed()).toBe(false);
    expect(await popup.isVisible('#pinform')).toBe(false);
    await popup.close();
    const next = await openSite();
    const again = await clickForWindow(next, '#sign'); // not Busy
    await again.close();
    expect((await result(next)).error?.code).toBe('Cancelled');
    await next.close();
  });

  it('a wrong PIN shows tries left in the window; the last try needs confirmation; the right PIN signs', async () => {
    const page = await openSite();
    const popup = await clickForWindow(page, '#sign');
    expect(await popup.isVisible('#pin')).toBe(true);
    expect(await popup.isVisible('#lasttrylabel')).toBe(false);
    expect(await popup.isVisible('#consent')).toBe(false);
    await popup.fill('#pin', '000000');
    await popup.click('#sign');
    await popup.waitForSelector('#tries:not([hidden])');
    expect(await popup.textContent('#tries')).toContain('2 tries left');
    expect(await popup.isVisible('#lasttrylabel')).toBe(false);
    await popup.fill('#pin', '111111');
    await popup.click('#sign');
    await popup.waitForSelector('#lasttrylabel:not([hidden])');
    expect(await popup.textContent('#tries')).toContain('1 try left');
    // the checkbox is required: submitting without it does not reach the card
    await popup.fill('#pin', PIN);
    await popup.click('#sign');
    expect(moicaCard.triesLeft).toBe(1);
    await popup.check('#lasttry');
    await popup.fill('#pin', PIN);
    await popup.click('#sign');
    const got = await result(page);
    const certificate = new X509Certificate(Buffer.from(got.ok.certificate, 'base64'));
    expect(verify('sha256', Buffer.from('hello from the page'), certificate.publicKey, Buffer.from(got.ok.signature, 'base64'))).toBe(true);
    expect(moicaCard.triesLeft).toBe(3);
    await page.close();
  });

  it('logs in with an origin-bound token that the relying back end verifies', async () => {
    const nonce = await validator.issueNonce();
    const page = await openSite(`?nonce=${nonce}`);
    const popup = await clickForWindow(page, '#login');
    expect(await popup.textContent('#operation')).toContain(site);
    await popup.fill('#pin', PIN);
    await popup.click('#sign');
    const { ok } = await result(page);
    const holder = await validator.validate(ok, { origin: site, nonce });
    expect(holder).toMatchObject({ name: TEST_HOLDER.name, idLast4: TEST_HOLDER.idLastFour, serialNumber: TEST_HOLDER.serialNumber });
    await page.close();
  });

  it('tries spent on another path make the window ask for the last try at once; a blocked card is never asked for a PIN', async () => {
    // two wrong PINs on the legacy path (the same service the HiPKI listener uses)
    for (let i = 0; i < 2; i++) await moica.sign({ data: Buffer.from('x') }, '000000').catch(() => undefined);
    expect(moicaCard.triesLeft).toBe(1);
    const page = await openSite();
    const popup = await clickForWindow(page, '#sign');
    expect(await popup.textContent('#tries')).toContain('1 try left');
    expect(await popup.isVisible('#lasttrylabel')).toBe(true);
    await popup.check('#lasttry');
    await popup.fill('#pin', PIN);
    await popup.click('#sign');
    expect((await result(page)).ok).toBeDefined();
    expect(moicaCard.triesLeft).toBe(3);
    await page.close();

    // another card, blocked through cardbridge: its window says so and offers no PIN field
    const blockedCard = new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN, triesLeft: 1, serialNumber: 'TP03000099990077' });
    await registry.insertCard('MOICA', blockedCard);
    await moica.sign({ data: Buffer.from('x') }, '000000', { confirmLastTry: true }).catch(() => undefined);
    expect(blockedCard.triesLeft).toBe(0);
    const verifies = () => blockedCard.received.filter((c) => c[1] === 0x20).length;
    const before = verifies();
    const blockedPage = await openSite();
    const blockedWindow = await clickForWindow(blockedPage, '#sign');
    await blockedWindow.waitForSelector('#blockedform:not([hidden])');
    expect(await blockedWindow.isVisible('#pin')).toBe(false);
    expect(await blockedWindow.textContent('#blockedform')).toContain('用戶代碼');
    await blockedWindow.click('#blockedok');
    expect((await result(blockedPage)).error?.code).toBe('PinBlocked');
    expect(await blockedWindow.textContent('#message')).toContain('用戶代碼');
    expect(verifies()).toBe(before);
    await blockedPage.close();
    await registry.insertCard('MOICA', moicaCard);
  });
  it('with two citizen certificate cards the window lists them (holder, masked number, reader); the chosen card signs and the other gets no VERIFY', async () => {
    const second = new VirtualMoicaGen2Card(await getTestPki(), { pin: PIN, serialNumber: 'TP03000087654321', triesLeft: 3, maxTries: 3 });
    registry.addReader('MOICA 2');
    await registry.insertCard('MOICA 2', second);
    const verifiesOf = (card: VirtualMoicaGen2Card) => card.received.filter((c) => c[1] === 0x20).length;
    const firstBefore = verifiesOf(moicaCard);
    try {
      const page = await openSite();
      const popup = await clickForWindow(page, '#sign');
      await popup.waitForSelector('#chooseform:not([hidden])');
      expect(await popup.isVisible('#pin')).toBe(false);
      const offered = await popup.$$eval('#choices label', (labels) => labels.map((l) => l.textContent ?? ''));
      expect(offered).toHaveLength(2);
      expect(offered[0]).toContain(TEST_HOLDER.name);
      expect(offered[0]).toContain('MOICA');
      expect(offered[1]).toContain(TEST_HOLDER.name);
      expect(offered[1]).toContain('TP**********4321');
      expect(offered[1]).toContain('MOICA 2');
      expect(offered.join(' ')).not.toContain('TP03000087654321');
      await chooseCard(popup, 'MOICA 2');
      expect(await popup.textContent('#card')).toContain('MOICA 2');
      await approve(popup, { pin: PIN });
      const got = await result(page);
      const certificate = new X509Certificate(Buffer.from(got.ok.certificate, 'base64'));
      expect(verify('sha256', Buffer.from('hello from the page'), certificate.publicKey, Buffer.from(got.ok.signature, 'base64'))).toBe(true);
      expect(verifiesOf(second)).toBe(1);
      expect(verifiesOf(moicaCard)).toBe(firstBefore);
      await page.close();
    } finally {
      registry.removeReader('MOICA 2');
    }
  });
});
