import { jest } from '@jest/globals';
import { verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { NHI_TEST_IDENTITY } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { decryptNhiEnCrypt } from '../../src/emulator/nhi/relying-site.js';
import { taipeiDate } from '../../src/server/nhi/legacy-crypto.js';
import { type TrustedHome, trustedHome } from '../helpers/trusted-home.js';
import { NhiAgentRig } from '../helpers/nhi-agent.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A government-like site (inside the default allow-list https://*.gov.tw) and one outside it. */
const GOV_PAGE = 'https://www.nhi-test.gov.tw/login.html';
const GOV_ORIGIN = 'https://www.nhi-test.gov.tw';
const OTHER_PAGE = 'https://www.not-allowed.example/login.html';
const OTHER_ORIGIN = 'https://www.not-allowed.example';

/**
 * The page, written as government pages are (plain callbacks, the wss step machine of the
 * official sample pages, jQuery-style form posts of JSON text to 59001, the canvas decoder of
 * nhiicc.host.js, the PopupAuthHC message dance). Ports are filled in because the official ones
 * may be taken on a developer's machine.
 */
function pageHtml(ports: { ws: number; http: number; https: number }, samSpkiB64: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>健保卡登入</title></head><body>
<button id="popup">健保卡登入</button>
<script>
var WS_URL = 'wss://localhost:${ports.ws}/echo';
var API = 'http://localhost:${ports.http}/api/';
var API_TLS = 'https://localhost:${ports.https}/api/';
var SAM_SPKI = '${samSpkiB64}';

function bytesOf(text) { var out = []; for (var i = 0; i < text.length; i++) out.push(text.charCodeAt(i)); return out; }

// The step machine of the official sample pages: GetBasic → GetVersion → GetRandom → H_Sign.
function wssSequence() {
  return new Promise(function (resolve) {
    var hid = { Basic: '', Version: '', Random: '', Sign: '' };
    var received = [];
    var websocket;
    try { websocket = new WebSocket(WS_URL); } catch (e) { resolve({ error: 'construct: ' + e.message, received: received }); return; }
    websocket.onopen = function () { websocket.send('GetBasic'); };
    websocket.onerror = function () { resolve({ error: 'onerror', received: received }); };
    websocket.onmessage = function (evt) {
      var message = evt.data;
      received.push(message.substring(0, 16));
      if (message.substring(0, 9) == 'GetBasic:') { hid.Basic = message.slice('GetBasic:'.length); websocket.send('GetVersion'); }
      else if (message.substring(0, 11) == 'GetVersion:') { hid.Version = message.slice('GetVersion:'.length); websocket.send('GetRandom'); }
      else if (message.substring(0, 10) == 'GetRandom:') { hid.Random = message.slice('GetRandom:'.length); websocket.send('H_Sign?Random=' + hid.Version + hid.Random); }
      else if (message.substring(0, 7) == 'H_Sign:') {
        var sSign = message.slice('H_Sign:'.length);
        websocket.close();
        if (sSign.length == 256) { hid.Sign = sSign; resolve({ hid: hid, signBytes: bytesOf(sSign), received: received }); }
        else resolve({ error: 'H_Sign length ' + sSign.length, received: received });
      } else { websocket.close(); resolve({ error: message, received: received }); }
    };
  });
}

// $.post(url, jsonText): a form content type with a JSON text body, no preflight.
function post(url, data) {
  return new Promise(function (resolve) {
    var x = new XMLHttpRequest();
    x.open('POST', url);
    x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8');
    x.onload = function () { resolve({ status: x.status, body: JSON.parse(x.responseText) }); };
    x.onerror = function () { resolve({ error: 'network' }); };
    x.send(data === undefined ? '' : data);
  });
}

function httpSequence(base) {
  var out = {};
  return post(base + 'GetVersion').then(function (r) { out.version = r; return post(base + 'GetRandom'); })
    .then(function (r) { out.random = r; return post(base + 'GetBasic'); })
    .then(function (r) { out.basic = r; if (!out.random.body) return out;
      return post(base + 'SignHC', JSON.stringify({ random: out.version.body.version + out.random.body.random })); })
    .then(function (r) { if (r && r.body) { out.sign = r; out.signBytes = bytesOf(r.body.sign); } return post(base + 'EncryptPwd', JSON.stringify({ pwd: 'abc12345' })); })
    .then(function (r) { out.encryptPwd = r; return out; });
}

// nhiicc.host.js's canvas decoder (skips zero bytes) and HiPKI's (stops at the first pixel whose blue is 0).
function bitmap(url) {
  return new Promise(function (resolve) {
    var img = new Image();
    img.crossOrigin = 'Anonymous';
    img.onload = function () {
      var c = document.createElement('canvas'); c.width = 1024; c.height = 1;
      var ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      var d = ctx.getImageData(0, 0, 1024, 1).data;
      var nhi = '', hipki = '', stopped = false;
      for (var i = 0; i < img.width; i++) {
        var b0 = d[i * 4 + 0], b1 = d[i * 4 + 1], b2 = d[i * 4 + 2];
        if (b2 !== 0) nhi += String.fromCharCode(b2);
        if (b1 !== 0) nhi += String.fromCharCode(b1);
        if (b0 !== 0) nhi += String.fromCharCode(b0);
        if (b2 === 0) stopped = true;
        if (!stopped) hipki += String.fromCharCode(b2, b1, b0);
      }
      resolve({ width: img.width, nhi: JSON.parse(nhi), hipki: JSON.parse(hipki) });
    };
    img.onerror = function () { resolve({ error: 'onerror' }); };
    img.src = url + '?tick=' + new Date().getTime();
  });
}

// A relying page can check the value itself: RSASSA-PKCS1-v1_5 / SHA-256 with the emulated SAM's key.
function verifySign(signBytes, signed) {
  var spki = Uint8Array.from(atob(SAM_SPKI), function (c) { return c.charCodeAt(0); });
  return crypto.subtle.importKey('spki', spki, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify'])
    .then(function (key) { return crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, new Uint8Array(signBytes), new TextEncoder().encode(signed)); });
}

// nhiicc.host.js PopupAuthHC.
window.popupResult = new Promise(function (resolve) {
  var childUrl = 'http://localhost:${ports.http}/auth.html';
  window.popupMessages = [];
  window.addEventListener('message', function (event) {
    var msg = JSON.parse(event.data);
    window.popupMessages.push({ origin: event.origin, msg: msg });
    if (msg.action === 'ready') event.source.postMessage(JSON.stringify({ action: 'send_auth_pin_step1', pin: 'abc12345' }), childUrl);
    else if (msg.action === 'recv_auth_pin_step1') { event.source.postMessage(JSON.stringify({ action: 'close' }), childUrl); resolve({ origin: event.origin, msg: msg }); }
  });
  document.getElementById('popup').addEventListener('click', function () {
    window.open(childUrl, 'auth window', 'height=150,width=150,resizable=no,scrollbars=no,titlebar=no,toolbar=no');
  });
});
</script></body></html>`;
}

describeWithTools('NHI agent drop-ins in Chromium (wss :7777, http :59001, https :59002)', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let rig: NhiAgentRig;
  let context: BrowserContext;
  let ports: { ws: number; http: number; https: number };
  let trusted: TrustedHome | undefined;

  beforeAll(async () => {
    // The real trust path: the local CA goes into $HOME/.pki/nssdb, where Chromium looks.
    trusted = await trustedHome('cardbridge-nhi-browser-');
    ({ dir } = trusted);
    const { home, state } = trusted;
    rig = await NhiAgentRig.start({ stateDir: state });
    ports = {
      ws: (await rig.preferring((port) => rig.ws({ port }), 7777)).port,
      http: (await rig.preferring((port) => rig.http({ port }), 59001)).port,
      https: (await rig.preferring((port) => rig.http({ port, https: true }), 59002)).port,
    };
    const spki = rig.sam.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      env: { ...process.env, HOME: home } as Record<string, string>,
    });
    // The sites' pages come from here; everything they fetch from localhost is real network.
    for (const url of [GOV_PAGE, OTHER_PAGE]) {
      await context.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: pageHtml(ports, spki) }));
    }
    // Chrome asks the user before a public site may reach localhost (Local Network Access);
    // granting it here is the user's "Allow" (or the admin policy), so what is tested is cardbridge's own check.
    await context.grantPermissions(['local-network-access'], { origin: GOV_ORIGIN });
    await context.grantPermissions(['local-network-access'], { origin: OTHER_ORIGIN });
  });

  afterAll(async () => {
    await context?.close();
    await rig?.close();
    trusted?.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    rig.audit.entries.length = 0;
  });

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(url);
    return page;
  }

  it('shows the trusted-service page at https://localhost:<ws port>/ with the trusted local CA', async () => {
    const page = await context.newPage();
    const response = await page.goto(`https://localhost:${ports.ws}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers().server).toBe('NHIICC-/1.0');
    expect(await page.textContent('h1')).toBe('已確認為可信任服務！');
    await page.close();
  });

  it('runs the wss GetBasic → GetVersion → GetRandom → H_Sign sequence of government pages', async () => {
    const page = await open(GOV_PAGE);
    const result = await page.evaluate('wssSequence()') as { hid: Record<string, string>; signBytes: number[]; error?: string };
    expect(result.error).toBeUndefined();
    const { cardNumber, idNumber, name, sex } = NHI_TEST_IDENTITY;
    expect(result.hid.Basic).toBe(`${cardNumber},${idNumber},${name},0740315,${sex},0`);
    expect(result.hid.Version).toBe('0001');
    expect(result.hid.Random).toMatch(/^\d{16}$/);
    const signed = `0001${result.hid.Random}`;
    expect(result.signBytes).toHaveLength(256);
    expect(verify('sha256', Buffer.from(signed), rig.sam.publicKey, Buffer.from(result.signBytes))).toBe(true);
    expect(await page.evaluate(`verifySign(${JSON.stringify(result.signBytes)}, ${JSON.stringify(signed)})`)).toBe(true);
    expect(rig.audit.entries.map((e) => [e.origin, e.operation, e.result])).toEqual([
      [GOV_ORIGIN, 'nhi-ws.GetBasic', 'ok'],
      [GOV_ORIGIN, 'nhi-ws.H_Sign', 'ok'],
    ]);
    await page.close();
  });

  it('answers the 59001 JSON API (jQuery-style posts) and the 59002 HTTPS one', async () => {
    const page = await open(GOV_PAGE);
    for (const base of [`http://localhost:${ports.http}/api/`, `https://localhost:${ports.https}/api/`]) {
      const out = (await page.evaluate(`httpSequence(${JSON.stringify(base)})`)) as Record<string, { status: number; body: Record<string, string> }> & { signBytes: number[] };
      expect(out.version!.body).toEqual({ result: '0000', version: '0001' });
      expect(out.basic!.body).toEqual({
        result: '0000',
        card_no: NHI_TEST_IDENTITY.cardNumber,
        as_id: NHI_TEST_IDENTITY.idNumber,
        name: NHI_TEST_IDENTITY.name,
        birthday: '0740315',
        sex: 'M',
        card_termination: '0',
      });
      const signed = `0001${out.random!.body.random}`;
      expect(out.sign!.body.result).toBe('0000');
      expect(verify('sha256', Buffer.from(signed), rig.sam.publicKey, Buffer.from(out.signBytes))).toBe(true);
      const today = taipeiDate(new Date());
      const date = { year: Number(today.year), month: Number(today.month), day: Number(today.day) };
      expect(decryptNhiEnCrypt(out.encryptPwd!.body.encrypt_pwd!, NHI_TEST_IDENTITY.cardNumber, date)).toBe('abc12345');
    }
    await page.close();
  });

  it('lets the page read GetStatus.bmp and GetCardStatus.bmp through a canvas', async () => {
    const page = await open(GOV_PAGE);
    for (const path of ['GetStatus.bmp', 'api/GetStatus.bmp']) {
      const status = (await page.evaluate(`bitmap('http://localhost:${ports.http}/${path}')`)) as { width: number; nhi: unknown; hipki: unknown; error?: string };
      expect(status.error).toBeUndefined();
      expect(status.nhi).toEqual({ result: '0000', version: '0001' });
      expect(status.hipki).toEqual(status.nhi);
    }
    const card = (await page.evaluate(`bitmap('https://localhost:${ports.https}/api/GetCardStatus.bmp')`)) as { nhi: unknown };
    expect(card.nhi).toEqual({ result: '0000' });
    await page.close();
  });

  it('completes the auth.html popup flow and posts the result to the opener’s origin only', async () => {
    const page = await open(GOV_PAGE);
    await page.click('#popup');
    const { origin, msg } = (await page.evaluate('window.popupResult')) as { origin: string; msg: Record<string, string> };
    expect(origin).toBe(`http://localhost:${ports.http}`);
    expect(msg).toMatchObject({ action: 'recv_auth_pin_step1', result: '0000', version: '0001', card_no: NHI_TEST_IDENTITY.cardNumber, name: NHI_TEST_IDENTITY.name });
    expect(verify('sha256', Buffer.from(`0001${msg.random}`), rig.sam.publicKey, Buffer.from(msg.sign!, 'latin1'))).toBe(true);
    expect(new Set(rig.audit.entries.map((e) => e.origin))).toEqual(new Set([GOV_ORIGIN]));
    await page.close();
  });

  it('gives a page outside the allow-list the refusal and nothing else', async () => {
    const page = await context.newPage();
    const console: string[] = [];
    page.on('console', (m) => console.push(m.text()));
    await page.goto(OTHER_PAGE);
    const wss = (await page.evaluate('wssSequence()')) as { error?: string; received: string[] };
    expect(wss).toEqual({ error: 'onerror', received: [] });
    const http = (await page.evaluate(`httpSequence('http://localhost:${ports.http}/api/')`)) as Record<string, unknown>;
    expect(http.version).toEqual({ error: 'network' });
    expect(http.basic).toEqual({ error: 'network' });
    expect(http.encryptPwd).toEqual({ error: 'network' });
    expect(await page.evaluate(`bitmap('http://localhost:${ports.http}/GetStatus.bmp')`)).toEqual({ error: 'onerror' });
    // the popup: it answers this origin with the refusal code only
    await page.click('#popup');
    const { msg } = (await page.evaluate('window.popupResult')) as { msg: Record<string, string> };
    expect(msg).toEqual({ action: 'recv_auth_pin_step1', result: '8201' });
    expect(rig.audit.entries).toEqual([]);
    // cardbridge answered every request (Chrome's own Local Network Access gate was passed) and
    // gave no CORS header, so the page could read nothing; the upgrade got 403.
    const log = console.join('\n');
    expect(log).toMatch(/WebSocket connection to 'wss:\/\/localhost:\d+\/echo' failed: .*Unexpected response code: 403/);
    for (const path of ['api/GetVersion', 'api/GetBasic', 'api/EncryptPwd', 'GetStatus.bmp']) {
      expect(log).toContain(`http://localhost:${ports.http}/${path}`);
    }
    expect(log.match(/No 'Access-Control-Allow-Origin' header is present/g)?.length).toBeGreaterThanOrEqual(5); // 4 API posts + 1 image
    await page.close();
  });
});
