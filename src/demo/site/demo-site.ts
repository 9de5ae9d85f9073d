import { type KeyObject, randomBytes, verify } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { getTestPki } from '../../emulator/moica/test-pki.js';
import { AuthTokenValidator, VerifyError, verifyCmsSignedData } from '../../verify/index.js';
import { CONTROL_HTML, DEMO_CSS, INDEX_HTML, MOICA_HTML, NHI_HTML, STATUS_HTML, controlJs, moicaJs, nhiJs, statusJs } from './pages.js';

export const DEMO_SITE_PORT = 39444;
/** Allowed only while the daemon runs in demo (mock) mode. */
export const DEMO_SITE_ORIGIN = `https://localhost:${DEMO_SITE_PORT}`;

export interface DemoSiteOptions {
  port: number;
  tls: { key: string; cert: string };
  /** The native API, e.g. https://127.0.0.1:39443 */
  bridge: string;
  /** The HiPKI listener, e.g. http://localhost:61161 */
  hipki: string;
  /** The emulated NHI SAM's key: H_Sign values verify with it. */
  samPublicKey: KeyObject;
}

/**
 * A relying site as a government service would run it, for the demo and as an example for
 * relying-site developers: it issues nonces and challenges, and verifies what comes back with
 * cardbridge/verify against the test PKI (a real site would trust the MOICA CA instead).
 */
export async function buildDemoSite(options: DemoSiteOptions): Promise<FastifyInstance> {
  const origin = `https://localhost:${options.port}`;
  const pki = await getTestPki();
  const trust = { trustAnchors: [pki.root.pem], intermediates: [pki.issuing.pem] };
  const validator = new AuthTokenValidator(trust);
  const challenges = new Map<string, number>();

  const app = Fastify({ https: { key: options.tls.key, cert: options.tls.cert }, logger: false, bodyLimit: 64 * 1024 });
  const bridgeWs = options.bridge.replace(/^http/, 'ws');
  const csp = [
    "default-src 'self'",
    `script-src 'self' ${options.bridge}`,
    `connect-src 'self' ${options.bridge} ${bridgeWs}`,
    "style-src 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
  const page = (reply: FastifyReply, type: string, body: string) => reply.type(type).header('Content-Security-Policy', csp).header('Cache-Control', 'no-store').send(body);

  const html = 'text/html; charset=utf-8';
  const js = 'text/javascript; charset=utf-8';
  app.get('/', (_q, reply) => page(reply, html, INDEX_HTML));
  app.get('/moica', (_q, reply) => page(reply, html, MOICA_HTML));
  app.get('/nhi', (_q, reply) => page(reply, html, NHI_HTML));
  app.get('/status', (_q, reply) => page(reply, html, STATUS_HTML));
  app.get('/control', (_q, reply) => page(reply, html, CONTROL_HTML));
  app.get('/demo.css', (_q, reply) => page(reply, 'text/css; charset=utf-8', DEMO_CSS));
  app.get('/moica.js', (_q, reply) => page(reply, js, moicaJs(options.bridge, options.hipki)));
  app.get('/nhi.js', (_q, reply) => page(reply, js, nhiJs(options.bridge)));
  app.get('/status.js', (_q, reply) => page(reply, js, statusJs(options.bridge)));
  app.get('/control.js', (_q, reply) => page(reply, js, controlJs(options.bridge)));

  const refuse = (reply: FastifyReply, error: string) => reply.code(400).send({ error });

  app.post('/api/nonce', async () => ({ nonce: await validator.issueNonce() }));

  app.post('/api/login/moica', { schema: { body: { type: 'object', required: ['token', 'nonce', 'idNumber'] } } }, async (request, reply) => {
    const { token, nonce, idNumber } = request.body as { token: unknown; nonce: string; idNumber: string };
    try {
      // A real site keeps the nonce in the user's session; the demo has no sessions.
      const holder = await validator.validate(token, { origin, nonce });
      if (holder.idLast4 && holder.idLast4 !== String(idNumber).slice(-4)) {
        return refuse(reply, `身分證號與憑證不符 The ID number does not match the certificate (…${holder.idLast4})`);
      }
      return { name: holder.name, idLast4: holder.idLast4, serialNumber: holder.serialNumber };
    } catch (e) {
      return refuse(reply, e instanceof VerifyError ? `${e.code}: ${e.message}` : String(e));
    }
  });

  app.post('/api/challenge', async () => {
    const challenge = `cardbridge-demo-login-${randomBytes(16).toString('hex')}`;
    challenges.set(challenge, Date.now());
    return { challenge };
  });

  app.post('/api/login/hipki', { schema: { body: { type: 'object', required: ['challenge', 'signature'] } } }, async (request, reply) => {
    const { challenge, signature } = request.body as { challenge: string; signature: string };
    const issued = challenges.get(challenge);
    challenges.delete(challenge);
    if (issued === undefined || Date.now() - issued > 5 * 60_000) return refuse(reply, 'Unknown or used challenge');
    try {
      const signed = await verifyCmsSignedData({ cms: Buffer.from(signature, 'base64'), ...trust });
      if (signed.content.toString('utf8') !== challenge) return refuse(reply, 'The signature is over something else');
      return { name: signed.name, idLast4: signed.idLast4 };
    } catch (e) {
      return refuse(reply, e instanceof VerifyError ? `${e.code}: ${e.message}` : String(e));
    }
  });

  app.post('/api/login/nhi', { schema: { body: { type: 'object', required: ['random', 'signature'] } } }, async (request, reply) => {
    const { random, signature } = request.body as { random: string; signature: string };
    // A real site forwards these to NHI, which checks them with its SAM.
    const ok = typeof random === 'string' && typeof signature === 'string' && verify('sha256', Buffer.from(random, 'ascii'), options.samPublicKey, Buffer.from(signature, 'base64'));
    return ok ? { verified: true } : refuse(reply, 'H_Sign does not verify');
  });

  return app;
}
