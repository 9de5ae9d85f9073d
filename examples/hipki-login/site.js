// The login many government sites use today, through the HiPKI Local Server protocol
// (http://localhost:61161, which cardbridge answers): the page opens the local server's
// popupForm, hands it a MakeSignature request over a one-time server nonce, and gets a PKCS#7
// SignedData back; the back end verifies it with cardbridge/verify and checks that the ID
// number the citizen typed ends with the certificate's last four characters.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { isVerifyError, verifyCmsSignedData } from 'cardbridge/verify';

const NONCE_LIFETIME_MS = 5 * 60_000;

function loginPage(hipkiUrl, nonce) {
  return `<!doctype html>
<html lang="zh-Hant"><meta charset="utf-8"><title>範例網站 · 自然人憑證登入（HiPKI）</title>
<h1>範例網站</h1>
<form id="login">
  <label>身分證統一編號 <input id="id" autocomplete="off" required></label>
  <label>PIN 碼 <input id="pin" type="password" inputmode="numeric" autocomplete="off" required></label>
  <button id="submit">以自然人憑證登入</button>
</form>
<p id="status" role="status"></p>
<script>
const hipki = ${JSON.stringify(hipkiUrl)};
const status = document.getElementById('status');
document.getElementById('login').addEventListener('submit', (event) => {
  event.preventDefault();
  // Opened in the click, as browsers require; the local server asks this page for its request.
  const popup = window.open(hipki + '/popupForm', 'hipki', 'height=200,width=200');
  const request = JSON.stringify({ func: 'MakeSignature', signatureType: 'PKCS7', tbs: ${JSON.stringify(nonce)}, tbsEncoding: 'NONE',
    hashAlgorithm: 'SHA256', pin: document.getElementById('pin').value, withCardSN: 'true', nonce: '' });
  const onMessage = async (message) => {
    if (message.origin !== hipki) return;
    const answer = JSON.parse(message.data);
    if (answer.func === 'getTbs') { popup.postMessage(request, hipki); return; }
    window.removeEventListener('message', onMessage);
    if (answer.ret_code !== 0) { status.textContent = '簽章失敗（0x' + (answer.ret_code >>> 0).toString(16) + '）'; return; }
    const response = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ idNumber: document.getElementById('id').value, signature: answer.signature }) });
    const result = await response.json();
    status.textContent = result.ok ? '歡迎，' + result.name : '登入失敗：' + result.reason;
  };
  window.addEventListener('message', onMessage);
});
</script>
</html>`;
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      text += chunk;
      if (text.length > 64 * 1024) request.destroy(new Error('body too large'));
    });
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}

/**
 * `trust`: the CA chain of the card certificates (the test PKI in tests; the Government PKI
 * in production). `hipkiUrl`: where the page finds the local server (http://localhost:61161).
 */
export function createSite({ hipkiUrl, trust }) {
  // session id → { nonce, issuedAt }: each nonce is good for one login attempt.
  const sessions = new Map();
  return createServer(async (request, response) => {
    const send = (status, type, body, headers = {}) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
      response.end(body);
    };
    const refuse = (reason) => send(401, 'application/json', JSON.stringify({ ok: false, reason }));
    try {
      if (request.method === 'GET' && request.url === '/') {
        const session = randomBytes(16).toString('base64url');
        const nonce = randomBytes(32).toString('base64url');
        sessions.set(session, { nonce, issuedAt: Date.now() });
        return send(200, 'text/html; charset=utf-8', loginPage(hipkiUrl, nonce), {
          'set-cookie': `login_session=${session}; HttpOnly; SameSite=Strict; Path=/`,
        });
      }
      if (request.method === 'POST' && request.url === '/login') {
        const session = /(?:^|;\s*)login_session=([A-Za-z0-9_-]+)/.exec(request.headers.cookie ?? '')?.[1];
        const pending = session && sessions.get(session);
        if (!pending) return refuse('NoSession');
        sessions.delete(session); // spent, whatever happens next
        if (Date.now() - pending.issuedAt > NONCE_LIFETIME_MS) return refuse('NonceExpired');
        const { idNumber, signature } = JSON.parse(await readBody(request));
        const signed = await verifyCmsSignedData({ cms: signature, trustAnchors: trust.roots, intermediates: trust.intermediates });
        // The signature must be over THIS login's nonce, or it is a replay of another one.
        if (signed.content.toString('utf8') !== pending.nonce) return refuse('WrongNonce');
        // The typed ID number must end with the four characters the certificate carries.
        if (!signed.idLast4 || String(idNumber ?? '').toUpperCase().slice(-4) !== signed.idLast4) return refuse('IdNumberMismatch');
        return send(200, 'application/json', JSON.stringify({ ok: true, name: signed.name }));
      }
      send(404, 'text/plain; charset=utf-8', 'not found');
    } catch (e) {
      if (isVerifyError(e)) return refuse(e.code);
      send(400, 'application/json', JSON.stringify({ ok: false, reason: 'BadRequest' }));
    }
  });
}
