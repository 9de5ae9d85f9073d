/**
 * The pages the HiPKI listener serves itself: the postMessage popups (`/popupForm`,
 * `/ChtPopupForm`), the self-test and the `/addDomain` confirmation. Served with a strict CSP
 * (own scripts and styles only, no framing); every value shown is set with textContent.
 */

const HEAD = (title: string, script: string) => `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="/hipki-ui/style.css">
<script src="/hipki-ui/${script}" defer></script>
</head>`;

/** Which routes a popup page offers: `/popupForm`, `/ChtPopupForm`, or none (vendor popups). */
type PopupForm = 'popup' | 'cht' | 'unsupported';

function popupHtml(form: PopupForm): string {
  return `${HEAD('cardbridge', 'popup.js')}
<body data-form="${form}" class="popup">
<main>
  <p class="brand">cardbridge</p>
  <p id="status" role="status">處理中… Working…</p>
  <p class="origin" id="origin" hidden></p>
  <section id="lasttry" hidden>
    <p class="ask"><strong>最後一次機會 · This is the last try</strong></p>
    <p>卡片 Card: <span id="lastcard"></span></p>
    <p class="note">這張自然人憑證只剩一次 PIN 碼機會：若網頁上輸入的 PIN 碼錯誤，卡片將被鎖住，須以用戶代碼至內政部憑證管理中心網站解鎖。確定 PIN 碼正確再送出。<br>
    This citizen certificate card has one PIN try left: if the PIN typed on the page is wrong, the card is blocked and must be unblocked with your 用戶代碼 at the MOICA CA web site. Send only if you are sure.</p>
    <div class="buttons">
      <button type="button" id="lastcancel" class="secondary">取消 Cancel</button>
      <button type="button" id="lastconfirm" disabled>確認送出 Use the last try</button>
    </div>
  </section>
</main>
</body>
</html>
`;
}

export const POPUP_FORM_HTML = popupHtml('popup');
export const CHT_POPUP_FORM_HTML = popupHtml('cht');
/** The vendor library's popups for functions cardbridge does not offer: same handshake, every func unsupported. */
export const UNSUPPORTED_POPUP_FORM_HTML = popupHtml('unsupported');

/**
 * The popup: asks the opener for its tbsPackage, sends its func to the form's route (a func the
 * form lacks goes to /hipki-ui/unsupported, which answers 0x7600000E for an allowed site), lets the server check the opener's origin
 * (X-HiPKI-Site) and do the work, posts the server's JSON text to that origin only, closes.
 * The tbsPackage is forwarded exactly as received, as a form value, so the server decodes it
 * once as the official component does.
 *
 * When the card has one PIN try left the server sends no VERIFY and tells this page (only
 * this page: own origin) which card it is; the popup shows site, card and "last try" and
 * re-posts with X-CardBridge-Confirm-Last-Try only after the user's click, armed like
 * /addDomain's Allow. A blocked card's answer stays on screen with how to unblock it.
 */
export const POPUP_JS = `'use strict';
(function () {
  var FORMS = {
    cht: { CheckEnvir: '/pkcs11info', GetUserCert: '/pkcs11info?withcert=true', MakeSignature: '/sign', umakeSig: '/umakeSig' },
    popup: { MakeSignature: '/sign', DecryptData: '/decrypt', pkcs11info: '/pkcs11info', CheckEnvir: '/pkcs11info', GetUserCert: '/pkcs11info?withcert=true', umakeSig: '/umakeSig' },
    unsupported: {},
  };
  var ROUTES = FORMS[document.body.getAttribute('data-form')] || {};
  var statusLine = document.getElementById('status');
  var handled = false;

  function show(text) { statusLine.textContent = text; }

  function formDecode(s) {
    s = s.replace(/\\+/g, ' ');
    try { return decodeURIComponent(s); } catch (e) { return s; }
  }

  /**
   * The package as a form value. A package with %XX escapes (ChtICToken's %2B, URI-encoded
   * PINs) is sent as is, so the server decodes it once, exactly as the official component. A
   * plain JSON text without escapes is what the page means literally (a "+" in it is a plus,
   * not a space), so it is encoded for the trip.
   */
  function formValue(raw) {
    if (!/%[0-9A-Fa-f]{2}/.test(raw)) {
      try { JSON.parse(raw); return encodeURIComponent(raw); } catch (e) { /* not JSON: as is */ }
    }
    return raw;
  }

  function funcOf(raw) {
    var candidates = [raw, formDecode(raw)];
    for (var i = 0; i < candidates.length; i++) {
      try {
        var pkg = JSON.parse(candidates[i]);
        if (pkg && typeof pkg.func === 'string') return pkg.func;
      } catch (e) { /* next */ }
    }
    return '';
  }

  function finish(target, origin, text) {
    try { target.postMessage(text, origin); } catch (e) { /* the opener went away */ }
    show('完成 Done');
    window.close();
  }

  window.addEventListener('message', function (event) {
    if (handled || event.source !== window.opener || typeof event.data !== 'string') return;
    var func = funcOf(event.data);
    if (func === 'getTbs') return;
    handled = true;
    var origin = event.origin;
    var target = event.source;
    if (origin === 'null') { show('無法回覆此網頁 Cannot answer this page'); return; }
    var shown = document.getElementById('origin');
    shown.textContent = origin;
    shown.hidden = false;
    var path = Object.prototype.hasOwnProperty.call(ROUTES, func) ? ROUTES[func] : '/hipki-ui/unsupported';
    var body = 'tbsPackage=' + formValue(event.data);
    function send(confirmed) {
      var headers = { 'Content-Type': 'application/x-www-form-urlencoded', 'X-HiPKI-Site': origin };
      if (confirmed) headers['X-CardBridge-Confirm-Last-Try'] = 'yes';
      fetch(path, { method: 'POST', headers: headers, body: body, cache: 'no-store', credentials: 'omit' })
        .then(function (response) { return response.text(); })
        .then(function (text) { answered(text, confirmed); })
        .catch(function () {
          finish(target, origin, JSON.stringify({ func: func, ret_code: 0x7600000D, last_error: 0, message: '執行檔錯誤或逾時' }));
        });
    }
    function answered(text, confirmed) {
      var reply = null;
      try { reply = JSON.parse(text); } catch (e) { /* not JSON: pass it on */ }
      if (reply && reply.confirmLastTry) {
        var card = reply.confirmLastTry;
        delete reply.confirmLastTry;
        if (!confirmed) { askLastTry(card, reply.func); return; }
        text = JSON.stringify(reply);
      }
      if (reply && reply.ret_code === 0x76100006 && reply.last_error === 0xA4) {
        // Blocked: the page gets the answer, the citizen keeps the explanation on screen.
        try { target.postMessage(text, origin); } catch (e) { /* the opener went away */ }
        show('卡片已鎖住：請以用戶代碼至內政部憑證管理中心網站 (https://moica.nat.gov.tw) 解鎖，不要再試 PIN 碼。The card is blocked: unblock it with your 用戶代碼 at https://moica.nat.gov.tw; do not try the PIN again.');
        return;
      }
      finish(target, origin, text);
    }
    function askLastTry(card, replyFunc) {
      var box = document.getElementById('lasttry');
      var confirm = document.getElementById('lastconfirm');
      document.getElementById('lastcard').textContent = card.card + '（' + card.reader + '）';
      show('請確認 Please confirm');
      box.hidden = false;
      // Armed only after a full second visible and focused, re-armed on every focus or
      // visibility change: a click meant for the opener must never land here.
      var armTimer;
      function disarm() { clearTimeout(armTimer); armTimer = undefined; confirm.disabled = true; }
      function arm() {
        disarm();
        if (document.visibilityState !== 'visible' || !document.hasFocus()) return;
        armTimer = setTimeout(function () { confirm.disabled = false; }, 1000);
      }
      window.addEventListener('focus', arm);
      window.addEventListener('blur', disarm);
      document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') arm(); else disarm(); });
      arm();
      var done = false;
      confirm.addEventListener('click', function () {
        if (done || confirm.disabled) return;
        done = true; disarm(); box.hidden = true; show('處理中… Working…');
        send(true);
      });
      document.getElementById('lastcancel').addEventListener('click', function () {
        if (done) return;
        done = true; box.hidden = true;
        finish(target, origin, JSON.stringify({ func: replyFunc || func, ret_code: 0x76000999, last_error: 0, message: '使用者已取消動作', message2: 'The user did not confirm the last PIN try in cardbridge’s window; the PIN was not sent' }));
      });
    }
    send(false);
  });

  if (window.opener) {
    window.opener.postMessage(JSON.stringify({ func: 'getTbs' }), '*');
  } else {
    show('此視窗由網站開啟使用。This window is used by web sites; nothing to do here.');
  }
})();
`;

export const SELF_TEST_HTML = `${HEAD('cardbridge 自我測試 · self-test', 'selftest.js')}
<body>
<main>
  <header><span class="brand">cardbridge</span> <span class="sub">跨平台網頁元件相容服務 · HiPKI-compatible local service</span></header>
  <h1>自我測試 · Self-test</h1>
  <p>版本 Version: <span id="version"></span></p>
  <p><a id="full-self-test" href="https://127.0.0.1:39443/">完整自我檢測：憑證、瀏覽器設定、允許的網站 · Full self-test: certificate, browser policies, allowed sites</a></p>
  <section>
    <h2>讀卡機與卡片 · Readers and cards</h2>
    <p id="summary" role="status">讀取中… Reading…</p>
    <div id="slots"></div>
    <button type="button" id="refresh" class="secondary">重新讀取 Read again</button>
  </section>
  <section>
    <h2>簽章測試 · Signing test</h2>
    <p class="note">輸入 PIN 碼以測試簽章；PIN 碼錯誤會用掉一次機會（共三次，錯三次鎖卡）。<br>
    Type the PIN to test a signature. A wrong PIN uses up one of the card's tries (three wrong PINs block the card).</p>
    <form id="signform">
      <label for="pin">PIN 碼 · PIN</label>
      <input id="pin" type="password" inputmode="numeric" autocomplete="off" minlength="6" maxlength="8" pattern="[0-9]{6,8}" required>
      <div class="buttons"><button type="submit" id="sign">簽章測試 Test signing</button></div>
    </form>
    <p id="signresult" role="status"></p>
  </section>
</main>
</body>
</html>
`;

export const SELF_TEST_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function date(t) { return new Date(t * 1000).toISOString().slice(0, 10); }
  function cn(dn) { var m = /(?:^|,)CN=([^,]*)/.exec(dn || ''); return m ? m[1] : dn; }

  fetch('/', { cache: 'no-store' }).then(function (r) { return r.text(); }).then(function (t) {
    var m = /version:([\\d.]+)/.exec(t); $('version').textContent = m ? m[1] : '?';
  });

  function load() {
    $('summary').textContent = '讀取中… Reading…';
    var slots = $('slots');
    while (slots.firstChild) slots.removeChild(slots.firstChild);
    fetch('/pkcs11info?withcert=true', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (info) {
      if (info.ret_code !== 0) { $('summary').textContent = (info.message || '') + ' (' + info.ret_code + ')'; return; }
      var cards = 0;
      info.slots.forEach(function (slot) {
        var box = el('div', undefined, 'slot');
        box.appendChild(el('p', '讀卡機 Reader: ' + slot.slotDescription, 'reader'));
        if (!(slot.token instanceof Object)) { box.appendChild(el('p', '沒有可用的自然人憑證 No citizen certificate card', 'none')); slots.appendChild(box); return; }
        cards++;
        box.appendChild(el('p', '卡號 Card: ' + slot.token.serialNumber));
        var list = el('ul');
        (slot.token.certs || []).forEach(function (c) {
          var who = c.label === 'CA Cert' ? cn(c.subjectDN) : cn(c.subjectDN) + (c.subjectID ? ' (…' + c.subjectID + ')' : '');
          list.appendChild(el('li', c.label + ' · ' + c.usage + ' · ' + who + ' · ' + date(c.notBeforeT) + ' – ' + date(c.notAfterT)));
        });
        box.appendChild(list);
        slots.appendChild(box);
      });
      $('summary').textContent = info.slots.length + ' 台讀卡機 reader(s), ' + cards + ' 張自然人憑證 citizen certificate card(s)';
    }).catch(function () { $('summary').textContent = '無法連線 Cannot reach the service'; });
  }
  $('refresh').addEventListener('click', load);
  load();

  $('signform').addEventListener('submit', function (event) {
    event.preventDefault();
    var pin = $('pin').value;
    $('pin').value = '';
    $('sign').disabled = true;
    $('signresult').textContent = '簽章中… Signing…';
    var tbs = 'cardbridge self-test ' + new Date().toISOString();
    var pkg = { func: 'MakeSignature', signatureType: 'PKCS1', tbs: tbs, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin: pin, withCardSN: 'true' };
    fetch('/sign', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'tbsPackage=' + encodeURIComponent(JSON.stringify(pkg)), cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (reply) {
        $('signresult').textContent = reply.ret_code === 0
          ? '成功：卡片簽章與憑證相符 OK: the card signed and the signature matches its certificate (' + reply.cardSN + ')'
          : '失敗 Failed: ' + (reply.message || '') + ' — ' + (reply.message2 || '') + ' (ret_code ' + reply.ret_code + ', last_error ' + reply.last_error + ')';
      })
      .catch(function () { $('signresult').textContent = '無法連線 Cannot reach the service'; })
      .then(function () { $('sign').disabled = false; });
  });
})();
`;

export const ADD_DOMAIN_HTML = `${HEAD('cardbridge 信任網站 · trust a site', 'adddomain.js')}
<body>
<main>
  <header><span class="brand">cardbridge</span> <span class="sub">跨平台網頁元件相容服務 · HiPKI-compatible local service</span></header>
  <section id="ask" hidden>
    <p class="ask">是否允許這個網站使用您的自然人憑證？<br>Allow this site to use your citizen certificate card?</p>
    <p class="origin" id="origin"></p>
    <p class="note">允許後，只有這個網站（不含其他網址）可透過 HiPKI 相容服務讀取卡片憑證，並在您輸入 PIN 碼後簽章。它<strong>不會</strong>因此取得您的健保卡資料或 cardbridge 的其他功能。只允許您信任的政府或機關網站。可用 <code>cardbridge sites revoke</code> 撤銷。<br>
    Once allowed, this exact site (no other address) can read the card's certificates through the HiPKI-compatible service and sign after you type your PIN on it. It does <strong>not</strong> get your 健保卡 data or cardbridge's other interfaces. Only allow sites you trust; revoke with <code>cardbridge sites revoke</code>.</p>
    <div class="buttons">
      <button type="button" id="deny" class="secondary">取消 Cancel</button>
      <button type="button" id="allow" disabled>允許 Allow</button>
    </div>
  </section>
  <p class="message" id="message" role="status"></p>
</main>
</body>
</html>
`;

export const ADD_DOMAIN_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var domain = new URLSearchParams(location.search).get('domain') || '';
  if (!/^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$/.test(domain)) {
    $('message').textContent = '網址不正確 Not a valid site name: ' + domain;
    return;
  }
  $('origin').textContent = 'https://' + domain.toLowerCase();
  $('ask').hidden = false;
  // Allow works only after this window has been visible and focused for a full second, and
  // that second starts again whenever it loses focus or visibility: a click or key press
  // meant for the page that opened (or covers) us must never land on it.
  var armTimer;
  function disarm() { clearTimeout(armTimer); armTimer = undefined; $('allow').disabled = true; }
  function arm() {
    disarm();
    if (document.visibilityState !== 'visible' || !document.hasFocus()) return;
    armTimer = setTimeout(function () { $('allow').disabled = false; }, 1000);
  }
  window.addEventListener('focus', arm);
  window.addEventListener('blur', disarm);
  document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') arm(); else disarm(); });
  arm();
  $('deny').addEventListener('click', function () { window.close(); $('message').textContent = '已取消 Cancelled'; $('ask').hidden = true; });
  $('allow').addEventListener('click', function () {
    $('allow').disabled = true;
    fetch('/addDomain', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'domain=' + encodeURIComponent(domain), cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (reply) {
        $('ask').hidden = true;
        $('message').textContent = reply.ret_code === 0
          ? (reply.added ? '已允許 Allowed: ' : '早已允許 Already allowed: ') + reply.origin + ' — 請回到網頁重試 Return to the site and try again.'
          : '失敗 Failed: ' + (reply.message2 || reply.message || reply.ret_code);
      })
      .catch(function () { $('message').textContent = '無法連線 Cannot reach the service'; });
  });
})();
`;

export const STYLE_CSS = `
:root { color-scheme: light dark; font-family: system-ui, "Noto Sans TC", sans-serif; }
body { margin: 0; display: flex; justify-content: center; }
main { max-width: 40rem; width: 100%; padding: 1rem; }
body.popup main { padding: .5rem; font-size: .9rem; }
header { border-bottom: 1px solid #8884; padding-bottom: .5rem; margin-bottom: 1rem; }
.brand { font-weight: 700; }
.sub { opacity: .7; font-size: .9rem; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; }
.origin { font-weight: 700; word-break: break-all; background: #ffd54f33; border: 1px solid #e0a800; padding: .4rem; border-radius: .4rem; }
.slot { border: 1px solid #8884; border-radius: .4rem; padding: .5rem; margin: .5rem 0; }
.reader { font-weight: 600; }
.note { font-size: .9rem; opacity: .85; }
label { display: block; margin: .5rem 0 .25rem; }
input[type=password] { font-size: 1.2rem; letter-spacing: .3rem; padding: .3rem; }
.buttons { display: flex; gap: .75rem; justify-content: flex-end; margin-top: 1rem; }
button { font-size: 1rem; padding: .45rem 1rem; border-radius: .4rem; border: 1px solid #1565c0; background: #1565c0; color: white; cursor: pointer; }
button.secondary { background: transparent; color: inherit; border-color: #8888; }
button:disabled { opacity: .5; cursor: default; }
.message { min-height: 1.5rem; }
`;
