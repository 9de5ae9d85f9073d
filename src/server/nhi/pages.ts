import { trustedPage } from '../shared/trusted-page.js';
import { NHI_OK, NHI_SERVICE_ERROR } from './error-codes.js';

/** The official agent's Server header, which some pages and support scripts look for. */
export const NHI_SERVER_HEADER = 'NHIICC-/1.0';

/** Bridge-served pages: no framing, nothing foreign, no referrer, no caching (shared/trusted-page.ts). */
export const securePage = trustedPage;

/**
 * `GET /`: users open https://localhost:7777 (or iccert.nhi.gov.tw:7777) to accept the
 * certificate; the official page says 已確認為可信任服務！ and pages' help texts tell users to
 * look for that sentence.
 */
export const TRUSTED_PAGE_HTML = `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>健保卡讀卡機元件 · cardbridge</title>
<link rel="stylesheet" href="/nhi.css">
</head>
<body>
<h1>已確認為可信任服務！</h1>
<p>cardbridge 已提供健保卡網路服務元件的功能，您可以關閉此頁，回到原本的網頁繼續操作。</p>
<p><small>This is cardbridge, standing in for NHI's card agent (健保卡元件). The certificate is trusted; you can close this page.</small></p>
</body>
</html>
`;

export const PAGE_CSS = `body{font-family:system-ui,sans-serif;margin:3em auto;max-width:36em;line-height:1.6;color:#222}
h1{font-size:1.4em}small{color:#666}
body.popup{font-size:12px;margin:.8em}
`;

/**
 * `auth.html`: the popup of nhiicc.host.js's PopupAuthHC. The page opens it, it says `ready`,
 * the page sends `{"action":"send_auth_pin_step1","pin":…}`, the popup runs the AuthHC sequence
 * on its own server for the page's origin (as the browser reported it in the message event) and
 * posts the result back to exactly that origin; `{"action":"close"}` closes it.
 */
export const AUTH_HTML = `<!doctype html>
<html lang="zh-Hant">
<head>
<meta charset="utf-8">
<title>健保卡認證 · cardbridge</title>
<script src="/auth.js" defer></script>
<link rel="stylesheet" href="/nhi.css">
</head>
<body class="popup">
<p id="status">健保卡認證中… Reading the health insurance card…</p>
</body>
</html>
`;

/**
 * The popup's script. Rules that make it better than the official popup (which posts to "*"
 * and whose parent's origin check is commented out):
 * - only messages from the window that opened it (`event.source === window.opener`) count;
 * - the origin the browser attests for that message is sent to cardbridge, which refuses any
 *   origin outside the allow-list before touching the card;
 * - results are posted to that origin only (never "*"): if the opener has navigated elsewhere in
 *   the meantime, the browser drops the message;
 * - one request per popup.
 * The initial `ready` carries no data; it goes to the opener's origin when the referrer names
 * it and to "*" otherwise, because the popup cannot know who opened it before it speaks.
 */
export const AUTH_JS = `(function () {
  'use strict';
  var statusLine = document.getElementById('status');
  var opener = window.opener;
  var used = false;
  var replyOrigin = null;
  function say(text) { statusLine.textContent = text; }
  if (!opener) { say('此視窗須由網頁開啟。 This window must be opened by a web page.'); return; }
  var readyTarget = '*';
  try { if (document.referrer) readyTarget = new URL(document.referrer).origin; } catch (e) { readyTarget = '*'; }
  window.addEventListener('message', function (event) {
    if (event.source !== opener || typeof event.data !== 'string') return;
    var message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    if (!message || typeof message !== 'object') return;
    if (message.action === 'close') {
      if (replyOrigin !== null && event.origin === replyOrigin) window.close();
      return;
    }
    if (message.action !== 'send_auth_pin_step1' || used) return;
    used = true;
    var origin = event.origin;
    replyOrigin = origin;
    var pin = typeof message.pin === 'string' ? message.pin : '';
    fetch('/auth/run', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ origin: origin, pwd: pin }), cache: 'no-store' })
      .then(function (response) { return response.json(); })
      .catch(function () { return { result: '${NHI_SERVICE_ERROR}' }; })
      .then(function (result) {
        var reply = { action: 'recv_auth_pin_step1' };
        for (var key in result) if (Object.prototype.hasOwnProperty.call(result, key)) reply[key] = result[key];
        say(result.result === '${NHI_OK}' ? '完成 Done' : '失敗 Failed (' + result.result + ')');
        opener.postMessage(JSON.stringify(reply), origin);
      });
  });
  setTimeout(function () { if (!used) window.close(); }, 60000);
  opener.postMessage(JSON.stringify({ action: 'ready' }), readyTarget);
})();
`;
