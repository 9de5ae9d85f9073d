import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { buildHipkiApp, HIPKI_DEFAULT_PORT } from '../../src/server/hipki/app.js';
import { memoryAudit } from '../../src/server/shared/audit.js';
import { SitesStore } from '../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import { VirtualMoicaGen2Card } from '../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki, type MoicaTestPki } from '../../src/emulator/moica/test-pki.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { freePort } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PIN = '135790';
const READER = 'Virtual Reader 00';
const SERIAL = 'TP03000099990001';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/**
 * A page written the way government pages use the HiPKI component: popup + postMessage
 * (popupForm), a ChtICToken-like client (ChtPopupForm), and p11Image.bmp through a canvas.
 * The bridge's port is templated in because the test cannot always own 61161.
 */
function governmentPage(bridgePort: number): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>TEST government page</title></head>
<body><button id="go">go</button>
<script>
var BRIDGE = 'http://localhost:${bridgePort}';
window.messages = [];
window.addEventListener('message', function (e) { window.messages.push({ origin: e.origin, data: e.data }); });

/** One popup, one request: answer getTbs with the package, resolve with the reply text. */
function viaPopup(path, name, packageText) {
  return new Promise(function (resolve, reject) {
    var popup = window.open(BRIDGE + path, name, 'height=200,width=200,left=100,top=20');
    if (!popup) return reject(new Error('popup blocked'));
    var timer = setTimeout(function () { window.removeEventListener('message', onMessage); reject(new Error('timeout')); }, 15000);
    function onMessage(e) {
      if (e.origin !== BRIDGE) return;
      var data = JSON.parse(e.data);
      if (data.func === 'getTbs') { popup.postMessage(packageText, '*'); return; }
      clearTimeout(timer);
      window.removeEventListener('message', onMessage);
      resolve(e.data);
    }
    window.addEventListener('message', onMessage);
  });
}

/* ——— a minimal DER walk to the certificate's SubjectPublicKeyInfo, for WebCrypto ——— */
function tlv(b, p) {
  var len = b[p + 1], q = p + 2;
  if (len & 0x80) { var n = len & 0x7f; len = 0; while (n--) len = len * 256 + b[q++]; }
  return { tag: b[p], start: q, end: q + len };
}
function spkiOf(der) {
  var tbs = tlv(der, tlv(der, 0).start);
  var p = tbs.start, el = tlv(der, p);
  if (el.tag === 0xa0) p = el.end;
  for (var i = 0; i < 5; i++) p = tlv(der, p).end; // serial, signature, issuer, validity, subject
  return der.slice(p, tlv(der, p).end);
}
function bytesOf(b64) { return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }); }
async function verifyPkcs1(reply, tbsText) {
  var key = await crypto.subtle.importKey('spki', spkiOf(bytesOf(reply.certb64)), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
  return crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, bytesOf(reply.signature), new TextEncoder().encode(tbsText));
}

/* ——— (1) popupForm MakeSignature ——— */
async function popupSign(signatureType, tbs) {
  var pkg = { tbs: tbs, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', withCardSN: 'true', pin: '${PIN}', nonce: '', func: 'MakeSignature', signatureType: signatureType };
  var text = await viaPopup('/popupForm', 'signWindow', JSON.stringify(pkg));
  var reply = JSON.parse(text);
  var verified = signatureType === 'PKCS1' && reply.ret_code === 0 ? await verifyPkcs1(reply, tbs) : null;
  return { text: text, verified: verified };
}

/* ——— (2) a ChtICToken-like client: the flat package, %2B, URI-encoded PIN, sentinels ——— */
var NE = '__NotExistedTag__';
function chtPackage(func, extra) {
  var pkg = { func: func, tbs: NE, tbsEncoding: NE, hashAlgorithm: NE, pin: NE, userpin: NE, signatureType: NE, readername: NE, slotDescription: NE,
    cardid: NE, keyidb64: NE, nonce: NE, withSigningTime: NE, withCardSN: NE, checkValidity: NE };
  for (var k in extra) pkg[k] = extra[k];
  return JSON.stringify(pkg).replace(/\\+/g, '%2B');
}
async function chtFlow(b64Tbs) {
  var steps = {};
  var env = JSON.parse(await viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('CheckEnvir', {})));
  steps.checkEnvir = env;
  if (env.func !== 'pkcs11info' || env.ret_code !== 0) return steps;
  steps.versionOk = env.serverVersion.localeCompare('1.3.4.3') >= 0 && env.serverVersion.localeCompare('1.3.4.103305') >= 0 && env.serverVersion.localeCompare('1.3.4.10') >= 0;
  var slot = env.slots.filter(function (s) { return s.token instanceof Object; })[0];
  var certs = JSON.parse(await viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('GetUserCert', { slotDescription: slot.slotDescription, readername: slot.slotDescription })));
  steps.getUserCert = certs;
  var pin = encodeURIComponent('${PIN}');
  var signed = JSON.parse(await viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('MakeSignature', {
    tbs: b64Tbs, tbsEncoding: 'base64', hashAlgorithm: 'SHA256', pin: pin, userpin: pin, signatureType: 'PKCS1',
    slotDescription: slot.slotDescription, readername: slot.slotDescription })));
  steps.makeSignature = signed;
  steps.cardSnMatches = signed.cardSN === slot.token.serialNumber;
  var unknown = JSON.parse(await viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('ChangeUserPin', {})));
  steps.unknown = unknown;
  return steps;
}

/* ——— (2b) the vendor library's popups for functions cardbridge lacks ——— */
async function vendorPopups(paths) {
  var answers = [];
  for (var i = 0; i < paths.length; i++) {
    var started = Date.now();
    var reply = JSON.parse(await viaPopup(paths[i], 'vendorPopup' + i, chtPackage('MakeSignature', { tbs: 'dGJz', tbsEncoding: 'base64' })));
    answers.push({ path: paths[i], func: reply.func, ret_code: reply.ret_code, ms: Date.now() - started });
  }
  return answers;
}

/* ——— (3) p11Image.bmp through a canvas ——— */
function readImage() {
  return new Promise(function (resolve) {
    var img = document.createElement('img');
    img.crossOrigin = 'Anonymous';
    img.src = BRIDGE + '/p11Image.bmp?_=' + Date.now();
    var canvas = document.createElement('canvas');
    canvas.width = 2000; canvas.height = 1;
    var ctx = canvas.getContext('2d', { willReadFrequently: true });
    img.onload = function () {
      ctx.drawImage(img, 0, 0);
      var out = '';
      try {
        for (var x = 0; x < 2000; x++) {
          var d = ctx.getImageData(x, 0, 1, 1).data;
          if (d[2] === 0) break;
          out += String.fromCharCode(d[2], d[1], d[0]);
        }
      } catch (e) { return resolve({ error: 'tainted: ' + e.name }); }
      resolve({ text: out, width: img.naturalWidth });
    };
    img.onerror = function () { resolve({ error: 'load failed' }); };
  });
}
async function fetchInfo() {
  try { return { text: await (await fetch(BRIDGE + '/pkcs11info')).text() }; } catch (e) { return { error: e.name }; }
}

document.getElementById('go').addEventListener('click', function () {
  window.result = undefined;
  window.task().then(function (r) { window.result = { ok: r }; }, function (e) { window.result = { error: String(e) }; });
});
</script></body></html>`;
}

describeWithTools('HiPKI drop-in in Chromium: popups, ChtICToken flow, p11Image.bmp, a foreign site', ['chromium', 'openssl'], ['playwright-core'], () => {
  let dir: string;
  let bridgePort: number;
  let app: FastifyInstance;
  let pages: Server;
  let foreign: Server;
  let siteOrigin: string;
  let foreignOrigin: string;
  let context: BrowserContext;
  let card: VirtualMoicaGen2Card;
  let registry: MockReaderRegistry;
  let pki: MoicaTestPki;
  let audit: ReturnType<typeof memoryAudit>;
  let sites: SitesStore;

  async function servePages(): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/gov.html')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(governmentPage(bridgePort));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-hipki-browser-'));
    bridgePort = (await portIsFree(HIPKI_DEFAULT_PORT)) ? HIPKI_DEFAULT_PORT : await freePort();
    const site = await servePages();
    const other = await servePages();
    pages = site.server;
    foreign = other.server;
    siteOrigin = `http://localhost:${site.port}`;
    foreignOrigin = `http://localhost:${other.port}`;
    pki = await getTestPki();
    registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
    registry.addReader(READER);
    card = new VirtualMoicaGen2Card(pki, { pin: PIN, serialNumber: SERIAL });
    await registry.insertCard(READER, card);
    audit = memoryAudit();
    // The test page's http origin is allowed explicitly (http origins are never allowed by default).
    sites = SitesStore.inStateDir(join(dir, 'state'), undefined, [siteOrigin]);
    app = await buildHipkiApp({ registry, moica: new MoicaService(registry), sites, audit, port: bridgePort, logger: false });
    await app.listen({ port: bridgePort, host: '127.0.0.1' });
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    await new Promise((r) => pages?.close(r));
    await new Promise((r) => foreign?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `task` (page code) from a real click, as a page must to open a popup. */
  async function run(page: Page, task: string): Promise<Json> {
    await page.evaluate(`window.task = ${task};`);
    await page.click('#go');
    await page.waitForFunction('window.result !== undefined', undefined, { timeout: 60_000 });
    return (await page.evaluate('window.result')) as Json;
  }

  async function open(origin: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${origin}/gov.html`);
    return page;
  }

  it('(1) popupForm: PKCS1 verified in the page with the card’s certificate, PKCS7 verified by openssl', async () => {
    const page = await open(siteOrigin);
    const tbs = 'login 2024 登入 a+b';
    const pkcs1 = await run(page, `() => popupSign('PKCS1', ${JSON.stringify(tbs)})`);
    expect(pkcs1.error).toBeUndefined();
    expect(pkcs1.ok.verified).toBe(true);
    const reply1 = JSON.parse(pkcs1.ok.text);
    expect(reply1).toEqual({ func: 'sign', ret_code: 0, last_error: 0, signature: expect.any(String), certb64: pki.sign.der.toString('base64'), cardSN: SERIAL, version: '1.3.4.999999' });
    expect(verify('sha256', Buffer.from(tbs), pki.sign.publicKey, Buffer.from(reply1.signature, 'base64'))).toBe(true);

    const pkcs7 = await run(page, `() => popupSign('PKCS7', ${JSON.stringify(tbs)})`);
    const reply7 = JSON.parse(pkcs7.ok.text);
    expect(reply7).toMatchObject({ func: 'sign', ret_code: 0, cardSN: SERIAL, certb64: pki.sign.der.toString('base64') });
    writeFileSync(join(dir, 'ca.pem'), pki.caBundlePem);
    writeFileSync(join(dir, 'sig.der'), Buffer.from(reply7.signature, 'base64'));
    const content = execFileSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'sig.der'), '-CAfile', join(dir, 'ca.pem'), '-binary', '-purpose', 'any'], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(content.toString()).toBe(tbs);

    // The page saw getTbs and the replies, all from the bridge's origin; the popups closed themselves.
    const messages = (await page.evaluate('window.messages')) as Array<{ origin: string; data: string }>;
    expect(messages.map((m) => [m.origin, JSON.parse(m.data).func])).toEqual([
      [`http://localhost:${bridgePort}`, 'getTbs'],
      [`http://localhost:${bridgePort}`, 'sign'],
      [`http://localhost:${bridgePort}`, 'getTbs'],
      [`http://localhost:${bridgePort}`, 'sign'],
    ]);
    const popups = () => context.pages().filter((p) => p.url().includes(`:${bridgePort}/`));
    for (let i = 0; i < 50 && popups().length > 0; i++) await page.waitForTimeout(100);
    expect(popups()).toEqual([]);
    expect(audit.entries.filter((e) => e.operation.startsWith('hipki.sign')).map((e) => e.origin)).toEqual([siteOrigin, siteOrigin]);
    await page.close();
  });

  it('(2) ChtICToken-style: CheckEnvir → GetUserCert → MakeSignature through /ChtPopupForm', async () => {
    const page = await open(siteOrigin);
    const tbs = Buffer.from([0xfb, 0xff, 0x00, 0x3e, 0x3f, 0x10, 0x20]); // base64 with + and /
    expect(tbs.toString('base64')).toMatch(/[+/]/);
    const result = await run(page, `() => chtFlow(${JSON.stringify(tbs.toString('base64'))})`);
    expect(result.error).toBeUndefined();
    const steps = result.ok;
    expect(steps.checkEnvir).toMatchObject({ func: 'pkcs11info', ret_code: 0, slots: [{ slotDescription: READER, token: { serialNumber: SERIAL } }] });
    expect(steps.checkEnvir.slots[0].token.certs).toBeUndefined();
    expect(steps.versionOk).toBe(true);
    const certs = steps.getUserCert.slots[0].token.certs;
    expect(steps.getUserCert.func).toBe('pkcs11info');
    expect(certs.find((c: Json) => c.label === 'cert1').certb64).toBe(pki.sign.der.toString('base64'));
    expect(steps.makeSignature).toMatchObject({ func: 'sign', ret_code: 0, cardSN: SERIAL });
    expect(steps.cardSnMatches).toBe(true);
    expect(verify('sha256', tbs, pki.sign.publicKey, Buffer.from(steps.makeSignature.signature, 'base64'))).toBe(true);
    expect(steps.unknown).toMatchObject({ func: 'ChangeUserPin', ret_code: 0x7600000e });
    await page.close();
  });

  it('(2b) the vendor popups for functions cardbridge lacks answer 0x7600000E at once and sign nothing', async () => {
    const page = await open(siteOrigin);
    const paths = ['/eIDPM/ChtPopupFormEIDPM', '/CardManagement/CMCPopForm', '/PrintCard/ChtPopupFormPrintCard', '/MOEACA/ChtPopupFormMOEACA'];
    const signsBefore = audit.entries.filter((e) => e.operation.startsWith('hipki.sign')).length;
    const result = await run(page, `() => vendorPopups(${JSON.stringify(paths)})`);
    expect(result.error).toBeUndefined();
    for (const answer of result.ok as Json[]) {
      expect(answer).toMatchObject({ func: 'MakeSignature', ret_code: 0x7600000e });
      expect(answer.ms).toBeLessThan(5000); // the library's own wait is 170 s
    }
    expect(result.ok.map((a: Json) => a.path)).toEqual(paths);
    expect(audit.entries.filter((e) => e.operation.startsWith('hipki.sign')).length).toBe(signsBefore);
    await page.close();
  });

  it('(3) p11Image.bmp decodes through a canvas to the pkcs11info JSON', async () => {
    const page = await open(siteOrigin);
    const result = await run(page, '() => readImage()');
    expect(result.ok.error).toBeUndefined();
    expect(result.ok.width).toBeLessThanOrEqual(2000);
    const expected = (await request({ port: bridgePort, path: '/pkcs11info', headers: { origin: siteOrigin } })).json();
    expect(JSON.parse(result.ok.text)).toEqual(expected);
    expect(expected.slots[0].token.serialNumber).toBe(SERIAL);
    // and CORS JSON works for the allowed page
    const fetched = await run(page, '() => fetchInfo()');
    expect(JSON.parse(fetched.ok.text)).toEqual(expected);
    await page.close();
  });

  it('(4) a page on a site off the allow-list gets 0x76000031 and nothing else', async () => {
    const page = await open(foreignOrigin);
    const verifiesBefore = card.received.filter((c) => c[1] === 0x20).length;
    const receivedBefore = card.received.length;
    const triesBefore = card.triesLeft;
    const result = await run(page, `() => popupSign('PKCS1', 'steal a signature')`);
    expect(result.error).toBeUndefined();
    expect(JSON.parse(result.ok.text)).toEqual({ func: 'sign', ret_code: 0x76000031, last_error: 0, message: '在未授權的網站執行元件', message2: expect.stringContaining(foreignOrigin) });
    await page.waitForTimeout(300);
    const messages = (await page.evaluate('window.messages')) as Array<{ origin: string; data: string }>;
    expect(messages.map((m) => JSON.parse(m.data))).toEqual([{ func: 'getTbs' }, expect.objectContaining({ ret_code: 0x76000031 })]);
    const image = await run(page, '() => readImage()');
    expect(image.ok.error).toBeDefined();
    const fetched = await run(page, '() => fetchInfo()');
    expect(fetched.ok.error).toBe('TypeError');
    expect(card.received.length).toBe(receivedBefore);
    expect(card.received.filter((c) => c[1] === 0x20).length).toBe(verifiesBefore);
    expect(card.triesLeft).toBe(triesBefore);
    await page.close();
  });

  it('(5) selfTest.htm shows the reader, the card and its certificates without a PIN', async () => {
    const page = await context.newPage();
    await page.goto(`http://localhost:${bridgePort}/selfTest.htm`);
    // Functions, not strings: the bridge's CSP forbids eval, and Playwright evaluates strings with it.
    await page.waitForFunction(() => (globalThis as Json).document.querySelectorAll('#slots li').length > 0, undefined, { timeout: 10_000 });
    const text = (await page.textContent('main')) ?? '';
    expect(text).toContain(READER);
    expect(text).toContain(SERIAL);
    expect(text).toContain(pki.holder.name);
    expect(text).toContain('1.3.4.999999');
    await page.close();
  });

  it('(6) /addDomain adds a site only through the user’s click in the bridge’s page', async () => {
    const page = await open(foreignOrigin);
    const target = 'https://www.partner-test.example.com';
    // The foreign page cannot post the confirmation itself (its Origin is not the bridge's).
    const forged = await run(page, `() => fetch(BRIDGE + '/addDomain', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'domain=www.partner-test.example.com' }).then(() => 'sent', (e) => e.name)`);
    expect(sites.policy().allows(target)).toBe(false);
    expect(['sent', 'TypeError']).toContain(forged.ok);
    const [popup] = await Promise.all([
      context.waitForEvent('page'),
      run(page, `() => Promise.resolve(!!window.open(BRIDGE + '/addDomain?domain=www.partner-test.example.com', 'add', 'width=500,height=400'))`),
    ]);
    await popup.waitForLoadState();
    const shownAt = Date.now();
    expect(await popup.textContent('#origin')).toBe(target);
    expect(await popup.isDisabled('#allow')).toBe(true); // armed only after a second visible and focused
    await popup.waitForSelector('#allow:not([disabled])');
    expect(Date.now() - shownAt).toBeGreaterThanOrEqual(900);
    // losing focus disarms it; focus again starts a new second
    await popup.evaluate(() => (globalThis as Json).dispatchEvent(new Event('blur')));
    expect(await popup.isDisabled('#allow')).toBe(true);
    await popup.evaluate(() => (globalThis as Json).dispatchEvent(new Event('focus')));
    const refocusedAt = Date.now();
    expect(await popup.isDisabled('#allow')).toBe(true);
    await popup.waitForSelector('#allow:not([disabled])');
    expect(Date.now() - refocusedAt).toBeGreaterThanOrEqual(900);
    await popup.click('#allow');
    await popup.waitForFunction(() => String((globalThis as Json).document.getElementById('message').textContent).includes('Allowed'), undefined, { timeout: 10_000 });
    // HiPKI only: the NHI listeners and the native API still refuse the site
    expect(sites.policy('hipki').allows(target)).toBe(true);
    expect(sites.policy('nhi').allows(target)).toBe(false);
    expect(sites.policy('native').allows(target)).toBe(false);
    expect(audit.entries.filter((e) => e.operation === 'hipki.addDomain').map((e) => [e.origin, e.result])).toEqual([[target, 'ok']]);
    await popup.close();
    await page.close();
  });

  it('(7) the last PIN try through /popupForm and /ChtPopupForm: the popup shows site, card and "last try"; nothing reaches the card until the click', async () => {
    const page = await open(siteOrigin);
    const verifies = () => card.received.filter((c) => c[1] === 0x20).length;
    const popupPkg = (pin: string) => JSON.stringify({ func: 'MakeSignature', signatureType: 'PKCS1', tbs: 'last try', tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin });
    const viaPopup = async (path: string, name: string, pin: string) => JSON.parse((await run(page, `() => viaPopup(${JSON.stringify(path)}, ${JSON.stringify(name)}, ${JSON.stringify(popupPkg(pin))})`)).ok);
    expect(card.triesLeft).toBe(3);
    expect(await viaPopup('/popupForm', 'signWindow', '000000')).toMatchObject({ ret_code: 0x76100006, last_error: -2147483646 });
    expect(await viaPopup('/popupForm', 'signWindow', '000000')).toMatchObject({ ret_code: 0x76100006, last_error: -2147483647 });
    const atOneTry = verifies();

    /** Starts a popup request and returns the popup once it asks for the last try. */
    async function askedPopup(path: string, name: string) {
      await page.evaluate(`window.task = () => viaPopup(${JSON.stringify(path)}, ${JSON.stringify(name)}, ${JSON.stringify(popupPkg(PIN))}); window.result = undefined;`);
      const [popup] = await Promise.all([context.waitForEvent('page'), page.click('#go')]);
      await popup.waitForSelector('#lasttry:not([hidden])', { timeout: 10_000 });
      return popup;
    }

    // ChtPopupForm, cancelled: the page hears "cancelled", the card never saw the PIN
    const cht = await askedPopup('/ChtPopupForm', 'ChtPopupForm');
    expect(await cht.textContent('#origin')).toBe(siteOrigin);
    expect(await cht.textContent('#lastcard')).toContain(SERIAL);
    expect(await cht.textContent('#lasttry')).toContain('最後一次');
    await cht.click('#lastcancel');
    await page.waitForFunction('window.result !== undefined', undefined, { timeout: 10_000 });
    expect(JSON.parse((await page.evaluate('window.result') as Json).ok)).toMatchObject({ ret_code: 0x76000999 });
    expect(verifies()).toBe(atOneTry);

    // popupForm, confirmed: the confirmation button is armed only after a second, then signs
    const popup = await askedPopup('/popupForm', 'signWindow');
    const shownAt = Date.now();
    expect(await popup.textContent('#origin')).toBe(siteOrigin);
    expect(await popup.textContent('#lastcard')).toContain(SERIAL);
    expect(await popup.isDisabled('#lastconfirm')).toBe(true);
    expect(verifies()).toBe(atOneTry);
    await popup.waitForSelector('#lastconfirm:not([disabled])');
    expect(Date.now() - shownAt).toBeGreaterThanOrEqual(900);
    await popup.click('#lastconfirm');
    await page.waitForFunction('window.result !== undefined', undefined, { timeout: 10_000 });
    const signed = JSON.parse((await page.evaluate('window.result') as Json).ok);
    expect(signed).toMatchObject({ func: 'sign', ret_code: 0, cardSN: SERIAL });
    expect(signed).not.toHaveProperty('confirmLastTry');
    expect(verifies()).toBe(atOneTry + 1);
    expect(card.triesLeft).toBe(3);
    await page.close();
  });
  it('(8) two 自然人憑證: a ChtICToken request naming the second card (readername, cardid) is signed by it; a card not inserted is refused; the first card never gets a VERIFY', async () => {
    const SECOND_READER = 'Virtual Reader 01';
    const SECOND_SERIAL = 'TP03000099990002';
    const second = new VirtualMoicaGen2Card(pki, { pin: PIN, serialNumber: SECOND_SERIAL });
    registry.addReader(SECOND_READER);
    await registry.insertCard(SECOND_READER, second);
    const verifiesOf = (c: VirtualMoicaGen2Card) => c.received.filter((apdu) => apdu[1] === 0x20).length;
    const firstBefore = verifiesOf(card);
    try {
      const page = await open(siteOrigin);
      const result = await run(
        page,
        `async () => {
          var env = JSON.parse(await viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('CheckEnvir', {})));
          var tokens = env.slots.filter(function (s) { return s.token instanceof Object; });
          var slot = tokens[1]; // what the page's setActiveSlotID picked
          var pin = encodeURIComponent('${PIN}');
          var sign = function (naming) {
            var pkg = { tbs: 'aGVsbG8=', tbsEncoding: 'base64', hashAlgorithm: 'SHA256', pin: pin, userpin: pin, signatureType: 'PKCS1' };
            for (var k in naming) pkg[k] = naming[k];
            return viaPopup('/ChtPopupForm', 'ChtPopupForm', chtPackage('MakeSignature', pkg)).then(JSON.parse);
          };
          return {
            tokens: tokens.map(function (t) { return [t.slotDescription, t.token.serialNumber]; }),
            signed: await sign({ readername: slot.slotDescription, slotDescription: slot.slotDescription, cardid: slot.token.serialNumber }),
            missing: await sign({ cardid: 'TP03000000000000' }),
          };
        }`,
      );
      expect(result.error).toBeUndefined();
      expect(result.ok.tokens).toEqual([
        [READER, SERIAL],
        [SECOND_READER, SECOND_SERIAL],
      ]);
      expect(result.ok.signed).toMatchObject({ func: 'sign', ret_code: 0, cardSN: SECOND_SERIAL });
      expect(verify('sha256', Buffer.from('hello'), pki.sign.publicKey, Buffer.from(result.ok.signed.signature, 'base64'))).toBe(true);
      expect(result.ok.missing).toMatchObject({ func: 'sign', ret_code: 0x76000006 });
      expect(verifiesOf(second)).toBe(1);
      expect(verifiesOf(card)).toBe(firstBefore);
      await page.close();
    } finally {
      registry.removeReader(SECOND_READER);
    }
  });
});
