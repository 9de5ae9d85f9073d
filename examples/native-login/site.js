// A minimal relying site: one page with a 自然人憑證 login button, one endpoint that verifies
// the login token. Plain Node (node:http); cardbridge/verify is the only library.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { AuthTokenValidator, isVerifyError } from 'cardbridge/verify';

/** The login page: the browser client comes from the bridge itself. */
function loginPage(bridgeUrl, nonce) {
  return `<!doctype html>
<html lang="zh-Hant"><meta charset="utf-8"><title>範例網站 · 自然人憑證登入</title>
<h1>範例網站</h1>
<button id="login">以自然人憑證登入</button>
<p id="status" role="status"></p>
<script type="module">
import { connect } from '${bridgeUrl}/v1/client.js';
const bridge = connect({ base: '${bridgeUrl}' });
const status = document.getElementById('status');
document.getElementById('login').onclick = () => {
  // authenticate() opens cardbridge's window, so it is called right in the click.
  bridge.authenticate('${nonce}')
    .then((token) => fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) }))
    .then((r) => r.json())
    .then((answer) => { status.textContent = answer.ok ? '歡迎，' + answer.name : '登入失敗：' + answer.reason; },
          (e) => { status.textContent = e.code === 'Cancelled' ? '已取消登入' : '無法登入：' + e.code; });
};
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

function nonceFromCookie(request) {
  const match = /(?:^|;\s*)login_session=([A-Za-z0-9_-]+)/.exec(request.headers.cookie ?? '');
  return match?.[1];
}

/**
 * The site. `origin` is this site's own origin (never taken from a request); `trust` is the CA
 * chain the card certificates must chain to: the test PKI in tests, the Government PKI in
 * production.
 */
export function createSite({ origin, bridgeUrl, trust }) {
  const validator = new AuthTokenValidator({ trustAnchors: trust.roots, intermediates: trust.intermediates });
  // One pending login per browser session: session id → nonce this back end issued.
  const sessions = new Map();
  return createServer(async (request, response) => {
    const send = (status, type, body, headers = {}) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
      response.end(body);
    };
    try {
      if (request.method === 'GET' && request.url === '/') {
        const session = randomBytes(16).toString('base64url');
        const nonce = await validator.issueNonce();
        sessions.set(session, nonce);
        return send(200, 'text/html; charset=utf-8', loginPage(bridgeUrl, nonce), {
          'set-cookie': `login_session=${session}; HttpOnly; SameSite=Strict; Path=/`,
        });
      }
      if (request.method === 'POST' && request.url === '/login') {
        const session = nonceFromCookie(request);
        const nonce = session && sessions.get(session);
        if (!nonce) return send(400, 'application/json', JSON.stringify({ ok: false, reason: 'NoSession' }));
        sessions.delete(session);
        const { token } = JSON.parse(await readBody(request));
        const holder = await validator.validate(token, { origin, nonce });
        return send(200, 'application/json', JSON.stringify({ ok: true, name: holder.name, idLast4: holder.idLast4 }));
      }
      send(404, 'text/plain; charset=utf-8', 'not found');
    } catch (e) {
      // A token that does not verify is the user's problem to see, with its typed reason.
      if (isVerifyError(e)) return send(401, 'application/json', JSON.stringify({ ok: false, reason: e.code }));
      send(400, 'application/json', JSON.stringify({ ok: false, reason: 'BadRequest' }));
    }
  });
}
