/**
 * cardbridge's own window: where the user sees which site asks for what, consents, and types
 * the PIN. Served by the bridge with a strict CSP; the page learns the request from the
 * fragment secret, which never reaches a server log.
 */
import { MESSAGES } from '../../client/messages.js';

export const APPROVE_HTML = `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>cardbridge</title>
<link rel="stylesheet" href="/ui/approve.css">
<script src="/ui/approve.js" defer></script>
</head>
<body>
<main>
  <header><span class="brand">cardbridge</span> <span class="sub">讀卡服務 · local card service</span></header>
  <section id="loading">載入中… Loading…</section>
  <section id="request" hidden>
    <p class="ask">這個網站要求 · This site asks</p>
    <p class="origin" id="origin"></p>
    <p class="operation" id="operation"></p>
    <p class="card">卡片 Card: <span id="card"></span></p>
    <form id="consent" hidden>
      <p class="note">「只允許這一次」不會記住；「允許並記住」在 <span id="rememberdays">90</span> 天內不再詢問此網站，可在 cardbridge 自我測試頁（https://127.0.0.1:39443/）或用 <code>cardbridge sites revoke</code> 撤銷。<br>
      "This time only" remembers nothing; "Allow and remember" does not ask this site again for <span id="rememberdays2">90</span> days; revoke it on cardbridge's self-test page (https://127.0.0.1:39443/) or with <code>cardbridge sites revoke</code>.</p>
      <div class="buttons">
        <button type="button" id="deny" class="secondary">拒絕 Deny</button>
        <button type="button" id="once" class="secondary">只允許這一次 This time only</button>
        <button type="submit" id="allow">允許並記住 Allow and remember</button>
      </div>
    </form>
    <form id="chooseform" hidden>
      <p class="ask">插著多張自然人憑證，請選擇要使用的卡片 · Several citizen certificate cards are in: choose the one to use</p>
      <div id="choices" role="radiogroup"></div>
      <div class="buttons">
        <button type="button" id="choosecancel" class="secondary">取消 Cancel</button>
        <button type="submit" id="choose">使用這張卡 Use this card</button>
      </div>
    </form>
    <form id="pinform" hidden>
      <label for="pin">PIN 碼（6–8 位數字）· PIN (6–8 digits)</label>
      <input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" minlength="6" maxlength="8" pattern="[0-9]{6,8}" required>
      <p class="tries" id="tries" hidden></p>
      <label class="lasttry" id="lasttrylabel" hidden><input type="checkbox" id="lasttry"> 我了解這是最後一次機會，輸錯卡片將鎖住 · I understand this is the last try; a wrong PIN blocks the card</label>
      <div class="buttons">
        <button type="button" id="cancel" class="secondary">取消 Cancel</button>
        <button type="submit" id="sign">確認 Confirm</button>
      </div>
    </form>
    <form id="blockedform" hidden>
      <p class="tries">此卡 PIN 碼已鎖住，cardbridge 不會再送出 PIN 碼。請持用戶代碼至內政部憑證管理中心網站（https://moica.nat.gov.tw）解鎖。<br>
      This card's PIN is blocked; cardbridge will not send a PIN to it. Unblock it with your 用戶代碼 (user code) at the MOICA CA web site (https://moica.nat.gov.tw).</p>
      <div class="buttons"><button type="submit" id="blockedok">知道了 OK</button></div>
    </form>
    <p class="message" id="message" role="status" aria-live="polite"></p>
  </section>
  <section id="finished" hidden><p id="finishedtext"></p></section>
</main>
</body>
</html>
`;

export const APPROVE_CSS = `
/* author display rules (label, .buttons) must never un-hide an element */
[hidden] { display: none !important; }
:root { color-scheme: light dark; font-family: system-ui, "Noto Sans TC", sans-serif; }
body { margin: 0; display: flex; justify-content: center; }
main { max-width: 28rem; width: 100%; padding: 1.25rem; }
header { border-bottom: 1px solid #8884; padding-bottom: .5rem; margin-bottom: 1rem; }
.brand { font-weight: 700; font-size: 1.2rem; }
.sub { opacity: .7; font-size: .9rem; }
.origin { font-size: 1.15rem; font-weight: 700; word-break: break-all; background: #ffd54f33; border: 1px solid #e0a800; padding: .5rem; border-radius: .4rem; }
.operation { font-size: 1.05rem; }
.note, .card { font-size: .9rem; opacity: .85; }
label { display: block; margin: .75rem 0 .25rem; }
input[type=password] { font-size: 1.4rem; letter-spacing: .3rem; width: 100%; box-sizing: border-box; padding: .4rem; }
.lasttry { color: #c62828; font-weight: 600; }
.tries { color: #c62828; font-weight: 600; }
.buttons { display: flex; gap: .75rem; justify-content: flex-end; margin-top: 1rem; }
button { font-size: 1rem; padding: .5rem 1.1rem; border-radius: .4rem; border: 1px solid #1565c0; background: #1565c0; color: white; cursor: pointer; }
button.secondary { background: transparent; color: inherit; border-color: #8888; }
button:disabled { opacity: .5; cursor: wait; }
.message { min-height: 1.5rem; color: #c62828; }
.choice { display: flex; gap: .6rem; align-items: flex-start; border: 1px solid #8886; border-radius: .4rem; padding: .5rem; margin: .4rem 0; cursor: pointer; }
.choice .holder { font-weight: 700; }
.choice .detail { font-size: .9rem; opacity: .85; }
`;

export const APPROVE_JS = `'use strict';
(function () {
  var parts = location.pathname.split('/');
  var id = parts[parts.length - 1];
  var secret = location.hash.slice(1);
  var api = '/ui/api/requests/' + encodeURIComponent(id);
  var $ = function (x) { return document.getElementById(x); };
  // The message catalogue (src/client/messages.ts): Traditional Chinese first, then English.
  var MESSAGES = ${JSON.stringify(MESSAGES)};
  function said(p) {
    var m = p && MESSAGES[p.code];
    var text = m ? m['zh-TW'] + '。' + m.en + '.' : '';
    if (p && p.detail && (!m || p.detail !== m.en)) text += (text ? ' ' : '') + p.detail;
    if (p && p.hint) text += ' — ' + p.hint;
    return text || '失敗。Failed.';
  }
  var busy = false;
  var userDeclined = false;
  var watching = false;

  function call(method, body) {
    return fetch(api, {
      method: method,
      headers: { 'Content-Type': 'application/json', 'X-Cardbridge-Secret': secret },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  function finish(text) {
    $('request').hidden = true;
    $('finished').hidden = false;
    $('finishedtext').textContent = text;
    setTimeout(function () { window.close(); }, 1200);
  }

  function render(view) {
    $('loading').hidden = true;
    $('request').hidden = false;
    $('origin').textContent = view.origin;
    $('operation').textContent = view.operation;
    $('card').textContent = view.card;
    if (view.state === 'done') return finish('完成，這個視窗即將關閉。 Done — this window will close.');
    if (view.state === 'failed') {
      var p = view.problem || {};
      if (p.code === 'Cancelled' && userDeclined) return finish('已取消。 Cancelled.');
      // Anything else stays on screen until the citizen closes the window: they must be able
      // to read why (the page went away, the card was removed, the card is blocked…).
      $('consent').hidden = true;
      $('chooseform').hidden = true;
      $('pinform').hidden = true;
      $('blockedform').hidden = true;
      $('message').textContent = '無法完成 · Could not finish: ' + said(p);
      return;
    }
    watch();
    // Several cards and none chosen yet: the citizen picks one before anything else.
    var choosing = !!view.choices && !view.chosen;
    $('chooseform').hidden = !choosing;
    if (choosing) {
      renderChoices(view.choices);
      $('consent').hidden = true;
      $('pinform').hidden = true;
      $('blockedform').hidden = true;
      $('message').textContent = view.problem ? said(view.problem) : '';
      return;
    }
    $('consent').hidden = view.kind !== 'consent';
    if (view.rememberDays) $('rememberdays').textContent = $('rememberdays2').textContent = String(view.rememberDays);
    // A blocked card is never asked for a PIN: the window says how to unblock it instead.
    $('blockedform').hidden = !(view.kind === 'pin' && view.blocked);
    $('pinform').hidden = view.kind !== 'pin' || !!view.blocked;
    if (view.kind === 'pin' && !view.blocked) {
      var tries = view.triesLeft;
      $('tries').hidden = tries === undefined;
      if (tries !== undefined) $('tries').textContent = '剩餘 ' + tries + ' 次機會 · ' + tries + (tries === 1 ? ' try' : ' tries') + ' left';
      $('lasttrylabel').hidden = tries !== 1;
      $('lasttry').required = tries === 1;
      $('pin').value = '';
      $('pin').focus();
    }
    $('message').textContent = view.problem ? said(view.problem) : '';
  }

  /** One radio button per card: holder, masked card number, reader (text only, never HTML). */
  function renderChoices(choices) {
    var box = $('choices');
    var current = box.querySelector('input:checked');
    var keep = current ? current.value : undefined;
    box.textContent = '';
    choices.forEach(function (c, i) {
      var label = document.createElement('label');
      label.className = 'choice';
      var input = document.createElement('input');
      input.type = 'radio';
      input.name = 'card';
      input.value = c.reader;
      input.required = true;
      input.checked = keep === undefined ? i === 0 : keep === c.reader;
      var text = document.createElement('span');
      var holder = document.createElement('span');
      holder.className = 'holder';
      holder.textContent = c.holder || '（未載明持卡人 · holder not stated）';
      var detail = document.createElement('span');
      detail.className = 'detail';
      detail.textContent = '卡號 Card ' + c.card + ' · 讀卡機 Reader: ' + c.reader;
      text.appendChild(holder);
      text.appendChild(document.createElement('br'));
      text.appendChild(detail);
      label.appendChild(input);
      label.appendChild(text);
      box.appendChild(label);
    });
  }

  /** While the request waits, look every second whether it ended elsewhere (the page went away). */
  function watch() {
    if (watching) return;
    watching = true;
    (function next() {
      setTimeout(function () {
        if (busy) return next();
        call('GET').then(function (r) {
          if (!busy && r.status < 400 && (r.body.state === 'done' || r.body.state === 'failed')) { watching = false; render(r.body); } else next();
        }, next);
      }, 1000);
    })();
  }

  function submit(body) {
    if (busy) return;
    busy = true;
    Array.prototype.forEach.call(document.querySelectorAll('button'), function (b) { b.disabled = true; });
    $('message').textContent = '處理中… Working with the card…';
    call('POST', body).then(function (r) {
      busy = false;
      Array.prototype.forEach.call(document.querySelectorAll('button'), function (b) { b.disabled = false; });
      if (r.status >= 400 && r.body && r.body.detail) {
        $('message').textContent = said(r.body);
        if (r.body.triesLeft === 1) { $('lasttrylabel').hidden = false; $('lasttry').required = true; }
        return;
      }
      render(r.body);
    }, function () {
      busy = false;
      $('message').textContent = '無法連線到 cardbridge。 cardbridge is not reachable.';
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('consent').addEventListener('submit', function (e) { e.preventDefault(); submit({ decision: 'allow', remember: true }); });
    $('once').addEventListener('click', function () { submit({ decision: 'allow', remember: false }); });
    $('deny').addEventListener('click', function () { userDeclined = true; submit({ decision: 'deny' }); });
    $('pinform').addEventListener('submit', function (e) {
      e.preventDefault();
      submit({ decision: 'allow', pin: $('pin').value, confirmLastTry: $('lasttry').checked });
      $('pin').value = '';
    });
    $('cancel').addEventListener('click', function () { userDeclined = true; submit({ decision: 'deny' }); });
    $('chooseform').addEventListener('submit', function (e) {
      e.preventDefault();
      var picked = $('choices').querySelector('input:checked');
      if (picked) submit({ decision: 'allow', choose: picked.value });
    });
    $('choosecancel').addEventListener('click', function () { userDeclined = true; submit({ decision: 'deny' }); });
    // No PIN is sent: the bridge ends the request as PinBlocked so the page learns why.
    $('blockedform').addEventListener('submit', function (e) { e.preventDefault(); submit({ decision: 'allow' }); });
    call('GET').then(function (r) {
      if (r.status >= 400) { $('loading').textContent = (r.body && r.body.detail) || 'This request no longer exists.'; return; }
      render(r.body);
    }, function () { $('loading').textContent = 'cardbridge is not reachable.'; });
  });
})();
`;
