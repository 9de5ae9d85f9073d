import type { FastifyInstance } from 'fastify';
import type { BrowserPolicyStatus } from '../../browsers/policies.js';
import { certificateFacts } from '../../crypto/certificate-facts.js';
import type { SitesStore } from '../../config/sites-store.js';
import { asCardBridgeError } from '../../errors.js';
import type { ReaderRegistry } from '../../readers/types.js';
import { VERSION } from '../../version.js';
import { MESSAGES } from '../../client/messages.js';
import { trustedPage } from '../shared/trusted-page.js';
import type { CardServices } from './card-routes.js';
import { APPROVE_CSS } from './ui-assets.js';
import { assertFromOwnPage } from './ui-routes.js';

/**
 * The citizen's self-test page at https://127.0.0.1:39443/: version, readers and cards,
 * whether this browser trusts the certificate (the page opening over https proves it), the
 * browser policies, the allowed sites and remembered consents with revoke, and "try reading my
 * card" (holder and number masked, no PIN). Its API answers cardbridge's own page only, with the
 * same checks as the consent window.
 */

export interface SelfTestOptions {
  registry: ReaderRegistry;
  ownOrigins: ReadonlySet<string>;
  services?: CardServices | undefined;
  sites?: SitesStore | undefined;
  /** The browser policy states (cardbridge browsers status); absent: not shown. */
  browsers?: (() => Promise<BrowserPolicyStatus[]>) | undefined;
}

/** 王小明 → 王*明, 王明 → 王*: enough to recognise one's own card, not to learn someone's name. */
export function maskName(name: string): string {
  const chars = [...name.trim()];
  if (chars.length <= 1) return chars.join('');
  if (chars.length === 2) return `${chars[0]}*`;
  return `${chars[0]}${'*'.repeat(chars.length - 2)}${chars.at(-1)}`;
}

/** The first and last four characters, the rest starred. */
export function maskNumber(value: string): string {
  if (value.length <= 8) return '*'.repeat(value.length);
  return `${value.slice(0, 4)}${'*'.repeat(value.length - 8)}${value.slice(-4)}`;
}

type CardReading =
  | { reader: string; kind: 'nhi'; holder: string; number: string }
  | { reader: string; kind: 'moica'; holder: string; number: string; validUntil: string }
  | { reader: string; kind: string; error: string; message: string };

async function readCard(services: CardServices, reader: string, kind: string): Promise<CardReading> {
  try {
    if (kind === 'nhi') {
      const data = await services.nhi.readBasic({ reader });
      return { reader, kind: 'nhi', holder: maskName(data.name), number: maskNumber(data.cardNumber) };
    }
    if (kind === 'moica') {
      const info = await services.moica.cardInfo({ reader });
      const certificates = await services.moica.listCertificates({ reader });
      const user = certificates.map((c) => certificateFacts(c.der)).find((f) => !f.isCa && f.holderName);
      return {
        reader,
        kind: 'moica',
        holder: maskName(user?.holderName ?? ''),
        number: maskNumber(info.serialNumber),
        validUntil: user ? user.notAfter.toISOString().slice(0, 10) : '',
      };
    }
    return { reader, kind, error: 'UnsupportedCard', message: `${MESSAGES.UnsupportedCard['zh-TW']} (${MESSAGES.UnsupportedCard.en})` };
  } catch (e) {
    const error = asCardBridgeError(e);
    const text = MESSAGES[error.code];
    return { reader, kind, error: error.code, message: `${text['zh-TW']} (${text.en})` };
  }
}

export function registerSelfTest(app: FastifyInstance, options: SelfTestOptions): void {
  const own = (request: Parameters<typeof assertFromOwnPage>[0]) => assertFromOwnPage(request, options.ownOrigins);

  app.get('/', async (_request, reply) => trustedPage(reply, 'text/html; charset=utf-8').send(SELF_TEST_HTML));
  app.get('/ui/self-test.js', async (_request, reply) => trustedPage(reply, 'text/javascript; charset=utf-8').send(SELF_TEST_JS));
  app.get('/ui/self-test.css', async (_request, reply) => trustedPage(reply, 'text/css; charset=utf-8').send(SELF_TEST_CSS));

  app.get('/ui/api/self-test', async (request, reply) => {
    own(request);
    const browsers = options.browsers ? await options.browsers().catch(() => []) : [];
    return trustedPage(reply, 'application/json').send({
      version: VERSION,
      serviceAvailable: options.registry.serviceAvailable,
      readers: options.registry.readers().map((r) => ({ name: r.name, card: r.card?.type ?? null })),
      sites: options.sites ? { allowedOrigins: options.sites.allowedOrigins(), consents: options.sites.consents() } : null,
      browsers: browsers.filter((b) => b.installed),
    });
  });

  app.post('/ui/api/self-test/read', async (request, reply) => {
    own(request);
    const cards: CardReading[] = [];
    if (options.services) {
      for (const r of options.registry.readers()) if (r.card) cards.push(await readCard(options.services, r.name, r.card.type.kind));
    }
    return trustedPage(reply, 'application/json').send({ cards });
  });

  const revokeBody = { type: 'object', properties: { origin: { type: 'string', minLength: 1, maxLength: 300 } }, required: ['origin'], additionalProperties: false } as const;
  app.post('/ui/api/self-test/revoke', { schema: { body: revokeBody } }, async (request, reply) => {
    own(request);
    const { origin } = request.body as { origin: string };
    const revoked = options.sites ? await options.sites.revoke(origin) : false;
    return trustedPage(reply, 'application/json').send({ revoked });
  });
}

export const SELF_TEST_HTML = `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>cardbridge 自我檢測 · self-test</title>
<link rel="stylesheet" href="/ui/self-test.css">
<script src="/ui/self-test.js" defer></script>
</head>
<body>
<main>
  <header><span class="brand">cardbridge 自我檢測</span> <span class="sub">self-test · 版本 version <span id="version">…</span></span></header>
  <section>
    <h2>憑證 · Certificate</h2>
    <p class="ok">✔ 這個瀏覽器信任 cardbridge 的本機憑證（本頁能以 https 開啟即表示信任）。<br>This browser trusts cardbridge’s local certificate (this https page opened).</p>
  </section>
  <section>
    <h2>讀卡機與卡片 · Readers and cards</h2>
    <ul id="readers"><li>載入中… Loading…</li></ul>
    <button type="button" id="read">試讀我的卡片 · Try reading my card</button>
    <ul id="cards"></ul>
  </section>
  <section>
    <h2>瀏覽器設定 · Browser policies</h2>
    <ul id="browsers"></ul>
  </section>
  <section>
    <h2>允許的網站 · Allowed sites</h2>
    <ul id="sites"></ul>
    <h3>已記住的同意 · Remembered consents</h3>
    <ul id="consents"></ul>
  </section>
  <p class="message" id="message" role="status" aria-live="polite"></p>
</main>
</body>
</html>
`;

export const SELF_TEST_CSS = `${APPROVE_CSS}
main { max-width: 40rem; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
ul { padding-left: 1.2rem; margin: .3rem 0; }
li { margin: .2rem 0; }
.ok { color: #2e7d32; }
.warn { color: #c62828; }
li button { margin-left: .5rem; font-size: .85rem; padding: .1rem .5rem; }
#read { margin: .5rem 0; }
`;

const STATE_TEXT: Record<string, string> = {
  ok: '已設定 · set',
  missing: '未設定 · missing',
  stale: '需更新 · out of date',
  invalid: '檔案有誤 · invalid',
};

export const SELF_TEST_JS = `'use strict';
(function () {
  var STATE_TEXT = ${JSON.stringify(STATE_TEXT)};
  var KIND = { nhi: '健保卡 NHI card', moica: '自然人憑證 citizen certificate', unknown: '無法辨識的卡片 unknown card' };
  function $(id) { return document.getElementById(id); }
  function item(text, cls) { var li = document.createElement('li'); li.textContent = text; if (cls) li.className = cls; return li; }
  function fill(list, items, empty) {
    list.textContent = '';
    if (!items.length) list.appendChild(item(empty));
    items.forEach(function (li) { list.appendChild(li); });
  }
  function api(method, path, body) {
    var init = { method: method, headers: { Accept: 'application/json' } };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) { return r.json(); });
  }
  function render(s) {
    $('version').textContent = s.version;
    fill($('readers'), s.readers.map(function (r) {
      return item(r.name + '：' + (r.card ? (KIND[r.card.kind] || r.card.kind) + (r.card.generation ? '（第 ' + r.card.generation + ' 代）' : '') : '沒有卡片 no card'));
    }), s.serviceAvailable ? '找不到讀卡機 · No card reader found' : '智慧卡服務（pcscd）沒有執行 · pcscd is not running');
    fill($('browsers'), s.browsers.map(function (b) {
      return item(b.name + '：' + (STATE_TEXT[b.state] || b.state) + (b.state === 'ok' ? '' : ' — sudo cardbridge browsers allow'), b.state === 'ok' ? 'ok' : 'warn');
    }), '沒有找到支援的瀏覽器 · No supported browser found');
    var sites = s.sites || { allowedOrigins: [], consents: {} };
    fill($('sites'), sites.allowedOrigins.map(function (o) { return revokable(o, o); }), '沒有 · none');
    fill($('consents'), Object.keys(sites.consents).map(function (o) {
      return revokable(o + '：' + Object.keys(sites.consents[o]).join(', '), o);
    }), '沒有 · none');
  }
  function revokable(text, origin) {
    var li = item(text);
    var button = document.createElement('button');
    button.type = 'button';
    button.textContent = '撤銷 Revoke';
    button.addEventListener('click', function () {
      api('POST', '/ui/api/self-test/revoke', { origin: origin }).then(function (r) {
        $('message').textContent = r.revoked ? '已撤銷 ' + origin + ' · Revoked' : '沒有可撤銷的項目 · Nothing to revoke';
        load();
      });
    });
    li.appendChild(button);
    return li;
  }
  function load() { api('GET', '/ui/api/self-test').then(render, function () { $('message').textContent = '無法連線到 cardbridge · cardbridge is not reachable'; }); }
  $('read').addEventListener('click', function () {
    $('read').disabled = true;
    $('cards').textContent = '';
    $('cards').appendChild(item('讀取中… Reading…'));
    api('POST', '/ui/api/self-test/read', {}).then(function (r) {
      fill($('cards'), r.cards.map(function (c) {
        if (c.error) return item(c.reader + '：' + c.message, 'warn');
        return item(c.reader + '：' + (KIND[c.kind] || c.kind) + ' ' + c.holder + ' · ' + c.number + (c.validUntil ? ' · 有效至 valid until ' + c.validUntil : ''), 'ok');
      }), '沒有插入卡片 · No card inserted');
    }).then(function () { $('read').disabled = false; }, function () { $('read').disabled = false; });
  });
  load();
})();
`;
