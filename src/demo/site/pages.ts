/**
 * The demo relying site's pages, modelled on the government login screens cardbridge serves.
 * Every identity in it is fake; the cards are cardbridge's virtual cards.
 */
function layout(title: string, body: string, script?: string): string {
  return `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · cardbridge demo</title>
<link rel="stylesheet" href="/demo.css">
${script ? `<script type="module" src="/${script}"></script>` : ''}
</head>
<body>
<header class="bar"><a href="/">cardbridge 示範網站</a><span>Demo relying site — fake identities, virtual cards</span></header>
<main>
${body}
</main>
</body>
</html>
`;
}

export const INDEX_HTML = layout(
  'Demo',
  `<h1>cardbridge 示範網站 · Demo relying site</h1>
<p>This site plays a government service that uses cardbridge. The daemon runs in demo mode:
mock readers hold a virtual 健保卡 (王小明) and a virtual 自然人憑證 (測試一, PIN <code>123456</code>).</p>
<ul class="tiles">
  <li><a href="/moica"><strong>自然人憑證登入</strong><span>Citizen certificate login, as on the labor-insurance e-service — new API and legacy HiPKI</span></a></li>
  <li><a href="/nhi"><strong>健保卡網路服務</strong><span>Health card query login: data after consent, then H_Sign</span></a></li>
  <li><a href="/status"><strong>讀卡機狀態</strong><span>Live reader and card events</span></a></li>
  <li><a href="/control"><strong>控制台</strong><span>Insert and remove the virtual cards, reset the PIN counter</span></a></li>
</ul>`,
);

export const MOICA_HTML = layout(
  '自然人憑證登入',
  `<h1>自然人憑證登入 <small>Citizen certificate login</small></h1>
<form id="login" class="panel" autocomplete="off">
  <label>身分證號 ID number <input id="id" name="id" required pattern="[A-Z][0-9]{9}" placeholder="A123456789" value="A123456789"></label>
  <label>出生日期（民國年月日 7 碼）Birth date (ROC, 7 digits) <input id="birth" name="birth" required pattern="[0-9]{7}" placeholder="0640102" value="0640102"></label>
  <div class="buttons">
    <button type="submit" id="modern">自然人憑證登入（cardbridge）</button>
  </div>
  <p class="hint">The PIN is typed in cardbridge’s own window; this page never sees it.</p>
</form>
<section class="panel" id="legacy-panel">
  <h2>傳統元件登入 <small>The same login the legacy way (HiPKI popupForm, PKCS7)</small></h2>
  <p class="hint">Pages written for the official HiPKI Local Server ask for the PIN themselves and
  send it to the local server on port 61161; cardbridge answers them unchanged.</p>
  <label>PIN 碼 <input id="legacy-pin" type="password" inputmode="numeric" autocomplete="off" value=""></label>
  <div class="buttons"><button type="button" id="legacy">HiPKI 登入</button></div>
</section>
<pre id="result" class="result" role="status"></pre>`,
  'moica.js',
);

export const NHI_HTML = layout(
  '健保卡網路服務',
  `<h1>健保卡網路服務註冊 <small>Health card query login</small></h1>
<section class="panel">
  <div class="buttons left"><button type="button" id="read">讀取健保卡 Read the card</button></div>
  <dl class="fields">
    <dt>卡號 Card number</dt><dd id="cardNumber">—</dd>
    <dt>姓名 Name</dt><dd id="name">—</dd>
    <dt>身分證號 ID</dt><dd id="idNumber">—</dd>
    <dt>出生日期 Birth date</dt><dd id="birth">—</dd>
  </dl>
  <div class="buttons left"><button type="button" id="hsign" disabled>健保卡登入（H_Sign）</button></div>
</section>
<pre id="result" class="result" role="status"></pre>`,
  'nhi.js',
);

export const STATUS_HTML = layout(
  '讀卡機狀態',
  `<h1>讀卡機狀態 <small>Readers and cards, live</small></h1>
<p id="connection" class="hint">Connecting to cardbridge…</p>
<table class="readers"><thead><tr><th>Reader</th><th>Card</th></tr></thead><tbody id="readers"></tbody></table>
<h2>Events</h2>
<ol id="events" class="events" reversed></ol>`,
  'status.js',
);

export const CONTROL_HTML = layout(
  '控制台',
  `<h1>控制台 <small>Mock readers (demo mode only)</small></h1>
<p class="hint">The same controls are open to relying-site developers’ tests:
<code>POST /v1/mock/readers/{reader}/card</code>, <code>DELETE …/card</code>, <code>…/card/reset-pin</code> — see docs/api.md.</p>
<table class="readers"><thead><tr><th>Reader</th><th>Card</th><th>PIN tries</th><th></th></tr></thead><tbody id="readers"></tbody></table>
<form id="add" class="inline"><input id="newreader" placeholder="New reader name" required maxlength="100"><button>Plug in a reader</button></form>
<pre id="result" class="result" role="status"></pre>`,
  'control.js',
);

export const DEMO_CSS = `
[hidden] { display: none !important; }
:root { color-scheme: light; font-family: system-ui, "Noto Sans TC", sans-serif; --blue: #0b5cab; }
body { margin: 0; background: #f4f6f9; color: #1d2733; }
.bar { background: var(--blue); color: white; padding: .6rem 1.2rem; display: flex; gap: 1rem; align-items: baseline; }
.bar a { color: white; font-weight: 700; text-decoration: none; }
.bar span { opacity: .8; font-size: .85rem; }
main { max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 small, h2 small { font-weight: 400; font-size: .6em; color: #556; }
.panel { background: white; border: 1px solid #d5dce5; border-radius: .5rem; padding: 1rem 1.2rem; margin: 1rem 0; }
label { display: block; margin: .6rem 0; font-size: .95rem; }
input { display: block; margin-top: .25rem; padding: .45rem; font-size: 1rem; width: 16rem; border: 1px solid #aab; border-radius: .3rem; }
.inline input { display: inline-block; }
button { font-size: 1rem; padding: .5rem 1rem; border-radius: .35rem; border: 1px solid var(--blue); background: var(--blue); color: white; cursor: pointer; }
button.secondary { background: white; color: var(--blue); }
button:disabled { opacity: .45; cursor: default; }
.buttons { display: flex; gap: .6rem; justify-content: flex-end; margin-top: .8rem; }
.buttons.left { justify-content: flex-start; }
.hint { color: #556; font-size: .88rem; }
.result { background: #1d2733; color: #e8eef5; padding: .8rem; border-radius: .4rem; white-space: pre-wrap; min-height: 1.5rem; }
.result.ok { background: #e6f4ea; color: #0d5228; }
.result.error { background: #fdecea; color: #8a1c12; }
.tiles { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); gap: .8rem; }
.tiles a { display: block; background: white; border: 1px solid #d5dce5; border-radius: .5rem; padding: 1rem; color: inherit; text-decoration: none; }
.tiles strong { display: block; font-size: 1.15rem; color: var(--blue); }
.tiles span { font-size: .9rem; color: #556; }
.fields { display: grid; grid-template-columns: 11rem 1fr; gap: .35rem .8rem; }
.fields dt { color: #556; }
table.readers { border-collapse: collapse; width: 100%; background: white; }
table.readers td, table.readers th { border: 1px solid #d5dce5; padding: .45rem .6rem; text-align: left; }
.events { font-family: ui-monospace, monospace; font-size: .85rem; }
`;

const CLIENT_IMPORT = (bridge: string) => `import { connect } from '${bridge}/v1/client.js';
const bridge = connect({ base: '${bridge}' });
const $ = (id) => document.getElementById(id);
function show(text, kind) { const r = $('result'); r.textContent = text; r.className = 'result ' + (kind || ''); }
function explain(e) { return (e.code ? '[' + e.code + '] ' : '') + (e.detail || e.message) + (e.triesLeft !== undefined ? ' (' + e.triesLeft + ' tries left)' : '') + (e.hint ? '\\n→ ' + e.hint : ''); }
`;

export function moicaJs(bridge: string, hipki: string): string {
  return `${CLIENT_IMPORT(bridge)}
let nonce;
async function freshNonce() { nonce = (await (await fetch('/api/nonce', { method: 'POST' })).json()).nonce; }
await freshNonce();

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  // Called inside the click: the client opens cardbridge's window at once.
  const pending = bridge.authenticate(nonce);
  show('Waiting for cardbridge’s window…');
  pending.then(async (token) => {
    const answer = await fetch('/api/login/moica', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token, nonce, idNumber: $('id').value, birthRoc: $('birth').value }) });
    const body = await answer.json();
    if (answer.ok) show('登入成功 Logged in: ' + body.name + ' (ID …' + body.idLast4 + ', certificate serialNumber ' + body.serialNumber + ')', 'ok');
    else show('登入失敗 ' + body.error, 'error');
  }, (e) => show(explain(e), 'error')).finally(freshNonce);
});

$('legacy').addEventListener('click', async () => {
  const challenge = (await (await fetch('/api/challenge', { method: 'POST' })).json()).challenge;
  const popup = window.open('${hipki}/popupForm', 'hipki', 'height=200,width=200,left=100,top=20');
  show('Waiting for the local HiPKI server…');
  const tbsPackage = JSON.stringify({ func: 'MakeSignature', signatureType: 'PKCS7', tbs: challenge, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin: $('legacy-pin').value, withCardSN: 'true', nonce: '' });
  const onMessage = async (event) => {
    if (event.origin !== '${hipki}') return;
    const message = JSON.parse(event.data);
    if (message.func === 'getTbs') { popup.postMessage(tbsPackage, '*'); return; }
    window.removeEventListener('message', onMessage);
    if (message.ret_code !== 0) { show('HiPKI ret_code 0x' + (message.ret_code >>> 0).toString(16) + ' last_error ' + message.last_error + ' ' + (message.message || ''), 'error'); return; }
    const answer = await fetch('/api/login/hipki', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge, signature: message.signature }) });
    const body = await answer.json();
    if (answer.ok) show('登入成功（HiPKI PKCS7）Logged in: ' + body.name + ' (ID …' + body.idLast4 + ', card ' + message.cardSN + ')', 'ok');
    else show('登入失敗 ' + body.error, 'error');
  };
  window.addEventListener('message', onMessage);
  setTimeout(() => { if ($('result').textContent.startsWith('Waiting for the local')) show('No answer from http://localhost:61161 — is the HiPKI listener running?', 'error'); }, 5000);
});
`;
}

export function nhiJs(bridge: string): string {
  return `${CLIENT_IMPORT(bridge)}
$('read').addEventListener('click', () => {
  const pending = bridge.readNhi();
  show('Waiting for cardbridge’s window…');
  pending.then((data) => {
    $('cardNumber').textContent = data.cardNumber;
    $('name').textContent = data.name + (data.nameComplete ? '' : '（含無法顯示的字）');
    $('idNumber').textContent = data.idNumber;
    $('birth').textContent = data.birthDateRoc + '（' + data.birthDate + '）';
    $('hsign').disabled = false;
    show('健保卡資料已讀取 Card data read.', 'ok');
  }, (e) => show(explain(e), 'error'));
});
$('hsign').addEventListener('click', () => {
  const pending = bridge.nhiHSign();
  show('Signing with NHI’s SAM…');
  pending.then(async (signed) => {
    const answer = await fetch('/api/login/nhi', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(signed) });
    const body = await answer.json();
    if (answer.ok) show('驗證成功 H_Sign verified for ' + signed.random, 'ok');
    else show('驗證失敗 ' + body.error, 'error');
  }, (e) => show(explain(e), 'error'));
});
`;
}

export function statusJs(bridge: string): string {
  return `${CLIENT_IMPORT(bridge)}
const readers = new Map();
function kind(card) { return card ? card.label || 'unknown card' : '—'; }
function render() {
  $('readers').replaceChildren(...[...readers].map(([name, card]) => { const tr = document.createElement('tr'); tr.dataset.reader = name;
    for (const text of [name, kind(card)]) { const td = document.createElement('td'); td.textContent = text; tr.append(td); } return tr; }));
}
function log(text) { const li = document.createElement('li'); li.textContent = new Date().toLocaleTimeString() + '  ' + text; $('events').prepend(li); }
bridge.events((event) => {
  if (event.type === 'snapshot') { readers.clear(); for (const r of event.readers) readers.set(r.name, r.card); log('connected: ' + event.readers.length + ' readers'); }
  else if (event.type === 'reader-added') { readers.set(event.reader, null); log('reader added: ' + event.reader); }
  else if (event.type === 'reader-removed') { readers.delete(event.reader); log('reader removed: ' + event.reader); }
  else if (event.type === 'card-inserted') { readers.set(event.reader, event.card); log('card inserted in ' + event.reader + ': ' + kind(event.card)); }
  else if (event.type === 'card-removed') { readers.set(event.reader, null); log('card removed from ' + event.reader); }
  else log(event.type);
  render();
}, { onConnectionChange: (up) => { $('connection').textContent = up ? 'Connected to cardbridge.' : 'cardbridge is not reachable; retrying…'; } });
`;
}

export function controlJs(bridge: string): string {
  return `const $ = (id) => document.getElementById(id);
function show(text, kind) { const r = $('result'); r.textContent = text; r.className = 'result ' + (kind || ''); }
async function call(method, path, body) {
  const answer = await fetch('${bridge}/v1/mock' + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const json = await answer.json();
  if (!answer.ok) { show('[' + json.code + '] ' + json.detail, 'error'); return; }
  render(json);
  show(method + ' ' + path + ' — done', 'ok');
}
function button(label, onClick, secondary) { const b = document.createElement('button'); b.type = 'button'; b.textContent = label; if (secondary) b.className = 'secondary'; b.onclick = onClick; return b; }
function render(state) {
  $('readers').replaceChildren(...state.readers.map((r) => {
    const tr = document.createElement('tr'); tr.dataset.reader = r.name;
    const path = '/readers/' + encodeURIComponent(r.name);
    const cells = [r.name, r.card || '—', r.triesLeft === undefined ? '' : String(r.triesLeft)];
    for (const text of cells) { const td = document.createElement('td'); td.textContent = text; tr.append(td); }
    const actions = document.createElement('td');
    if (r.card) {
      actions.append(button('Remove card', () => call('DELETE', path + '/card'), true));
      if (r.card.startsWith('moica')) actions.append(' ', button('Reset PIN', () => call('POST', path + '/card/reset-pin'), true));
    } else {
      for (const kind of state.cardKinds) actions.append(button('Insert ' + kind, () => call('POST', path + '/card', { card: kind })), ' ');
    }
    actions.append(' ', button('Unplug reader', () => call('DELETE', path), true));
    tr.append(actions);
    return tr;
  }));
}
$('add').addEventListener('submit', (e) => { e.preventDefault(); call('POST', '/readers', { name: $('newreader').value }); $('newreader').value = ''; });
fetch('${bridge}/v1/mock').then((r) => r.json()).then(render, () => show('cardbridge is not reachable (is it running with --mock?)', 'error'));
`;
}
