import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { CardBridgeError } from '../../errors.js';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { ReaderRegistry, ReaderState, RegistryEvent } from '../../readers/types.js';
import { VERSION } from '../../version.js';
import { checkPeer, installGuard } from '../security/guard.js';
import { allowedHosts } from '../security/loopback.js';
import type { OriginPolicy } from '../../config/origin-policy.js';
import { RateLimiter } from '../security/rate-limit.js';
import { installErrorHandlers, sendProblem } from './errors.js';
import { buildOpenApi, type RouteDoc } from './openapi.js';
import { problemSchema, readerSchema, statusSchema } from './schemas.js';
import { type CardServices, registerCardRoutes } from './card-routes.js';
import { PendingRequests } from './pending.js';
import { registerUiRoutes } from './ui-routes.js';
import { type AuditLog, loggerAudit } from '../shared/audit.js';
import type { SitesStore } from '../../config/sites-store.js';
import type { MockControl } from '../../demo/mock-control.js';
import { PROBE_GIF } from '../shared/probe.js';
import { registerSelfTest } from './self-test.js';
import type { BrowserPolicyStatus } from '../../browsers/policies.js';

export { NATIVE_DEFAULT_PORT } from '../../config/listeners.js';
export const NATIVE_HOST_NAMES = ['127.0.0.1', 'localhost'] as const;

/** dist/client/index.js, from src/server/native or dist/server/native alike (same depth). */
const CLIENT_BUNDLE = new URL('../../../dist/client/index.js', import.meta.url);
const CLIENT_MESSAGES = new URL('../../../dist/client/messages.js', import.meta.url);
/** The client library and its message catalogue: public code, loadable by any page (see the guard). */
const PUBLIC_PATHS = new Set(['/v1/client.js', '/v1/messages.js']);

export interface NativeAppOptions {
  registry: ReaderRegistry;
  policy: () => OriginPolicy;
  /** The port the listener is reachable on, for the Host check. */
  port: number;
  https?: { key: string | Buffer; cert: string | Buffer };
  logger?: Logger | false;
  rateLimit?: { perSecond: number; burst: number };
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
  /** The card operations; without them only status, readers and events are served. */
  cards?: { services: CardServices; sites: SitesStore; pending?: PendingRequests; audit?: AuditLog };
  /** Mock mode only: the remote control of the mock readers (/v1/mock). */
  mockControl?: MockControl;
  /** What the self-test page at / shows besides readers and sites. */
  selfTest?: { browsers?: () => Promise<BrowserPolicyStatus[]> };
}

/** The card's type with its profile's label, so pages never keep their own list of card names. */
function cardJson(reader: ReaderState) {
  return reader.card ? { ...reader.card.type, label: reader.card.label } : null;
}

function readerJson(reader: ReaderState) {
  return { name: reader.name, cardPresent: reader.card !== undefined, atr: reader.card?.atr ?? null, card: cardJson(reader) };
}

/**
 * The native v1 API: HTTPS + WebSocket on loopback. Every request passes the shared guard
 * (loopback peer, Host, Origin allow-list, rate limit) before any route runs.
 */
export async function buildNativeApp(options: NativeAppOptions): Promise<FastifyInstance> {
  const scheme = options.https ? 'https' : 'http';
  const ownOrigins = new Set(NATIVE_HOST_NAMES.map((h) => `${scheme}://${h}:${options.port}`));
  const hosts = allowedHosts([...NATIVE_HOST_NAMES, '::1'], options.port);
  const fastifyOptions: FastifyServerOptions & { https?: NativeAppOptions['https'] } = {
    loggerInstance: options.logger || undefined,
    logger: options.logger ? undefined : false,
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    connectionTimeout: options.requestTimeoutMs ?? 30_000,
    // Hosts are checked by the guard; fastify must not trust proxy headers on a local socket.
    trustProxy: false,
    // A URL fastify cannot decode (e.g. "%zz") is answered as problem JSON too, not in fastify's own format.
    frameworkErrors: (error: Error, _request: unknown, reply: FastifyReply) => sendProblem(reply, new CardBridgeError('InvalidInput', `Invalid request: ${error.message}`)),
  } as FastifyServerOptions;
  // A client that connects and never starts TLS is bounded too (Node's default is 120 s).
  if (options.https) fastifyOptions.https = { ...options.https, handshakeTimeout: Math.min(options.requestTimeoutMs ?? 30_000, 10_000) } as NativeAppOptions['https'];
  const app = Fastify(fastifyOptions as FastifyServerOptions) as unknown as FastifyInstance;

  const guardOptions = {
    hosts,
    policy: options.policy,
    ownOrigins,
    rateLimiter: new RateLimiter(options.rateLimit?.perSecond ?? 20, options.rateLimit?.burst ?? 40),
    publicPaths: PUBLIC_PATHS,
    refuse: sendProblem,
  };
  installGuard(app, guardOptions);
  installErrorHandlers(app);

  const docs: RouteDoc[] = [];
  const problemResponses = { 400: problemSchema, 403: problemSchema, 409: problemSchema, 429: problemSchema, 503: problemSchema };

  docs.push({ method: 'get', path: '/v1/status', summary: 'Version, readers and card types (no personal data)', response: statusSchema });
  app.get('/v1/status', { schema: { response: { 200: statusSchema, ...problemResponses } } }, async () => ({
    version: VERSION,
    api: 'v1',
    serviceAvailable: options.registry.serviceAvailable,
    readers: options.registry.readers().map((r) => ({ name: r.name, cardPresent: r.card !== undefined, card: cardJson(r) })),
  }));

  const readersResponse = { type: 'object', properties: { readers: { type: 'array', items: readerSchema } }, required: ['readers'], additionalProperties: false } as const;
  docs.push({ method: 'get', path: '/v1/readers', summary: 'Readers with card presence, ATR and card type', response: readersResponse });
  app.get('/v1/readers', { schema: { response: { 200: readersResponse, ...problemResponses } } }, async () => ({
    readers: options.registry.readers().map(readerJson),
  }));

  docs.push({
    method: 'get',
    path: '/v1/events',
    summary: 'WebSocket: a `snapshot` of the readers, then reader-added/-removed, card-inserted/-removed, service-lost/-restored',
  });

  let pending: PendingRequests | undefined;
  if (options.cards) {
    pending = options.cards.pending ?? new PendingRequests();
    registerCardRoutes(app, {
      registry: options.registry,
      services: options.cards.services,
      sites: options.cards.sites,
      pending,
      audit: options.cards.audit ?? loggerAudit(options.logger || undefined),
      uiBase: `${scheme}://127.0.0.1:${options.port}`,
      docs,
    });
    registerUiRoutes(app, pending, ownOrigins);
  }

  // The mock routes (and the demo code behind them) are loaded only in mock mode.
  if (options.mockControl) (await import('./mock-routes.js')).registerMockRoutes(app, options.mockControl, docs);

  docs.push({ method: 'get', path: '/', summary: 'The self-test page for citizens (cardbridge’s own page; its /ui/api/self-test answers that page only)' });
  registerSelfTest(app, { registry: options.registry, ownOrigins, services: options.cards?.services, sites: options.cards?.sites, browsers: options.selfTest?.browsers });

  docs.push({ method: 'get', path: '/v1/client.js', summary: 'The browser client library (an ES module importing ./messages.js; see docs/api.md); any origin may load it' });
  docs.push({ method: 'get', path: '/v1/messages.js', summary: 'The message catalogue (Traditional Chinese, English) the client imports; any origin may load it' });
  for (const [path, file] of [['/v1/client.js', CLIENT_BUNDLE], ['/v1/messages.js', CLIENT_MESSAGES]] as const) {
    app.get(path, async (_request, reply) => {
      const source = await readFile(file).catch(() => undefined);
      if (!source) throw new CardBridgeError('Unavailable', 'The client library is not built; run "npm run build" in the cardbridge folder');
      return reply.type('text/javascript; charset=utf-8').header('Cache-Control', 'no-cache').send(source);
    });
  }

  docs.push({
    method: 'get',
    path: '/v1/probe.gif',
    summary: 'A 1×1 image for detection without CORS: loads in a plain <img> from any page when cardbridge runs and its certificate is trusted; with crossorigin only for allowed sites',
  });
  app.get('/v1/probe.gif', async (_request, reply) =>
    reply.type('image/gif').header('Cache-Control', 'no-store').header('Cross-Origin-Resource-Policy', 'cross-origin').send(PROBE_GIF),
  );

  app.get('/v1/openapi.json', async () => buildOpenApi(VERSION, options.port, docs));

  // ——— events over WebSocket: the guard's checks run on the upgrade request too ———
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  const clients = new Set<WebSocket>();
  const broadcast = (event: RegistryEvent) => {
    const message = JSON.stringify(event);
    for (const ws of clients) ws.send(message);
  };
  options.registry.on('event', broadcast);

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = request.url?.split('?')[0];
    const check = checkPeer(guardOptions, request.socket.remoteAddress, request.headers.host, request.headers.origin);
    if (url !== '/v1/events' || !check.ok) {
      socket.end(`HTTP/1.1 ${url !== '/v1/events' ? '404 Not Found' : '403 Forbidden'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => clients.delete(ws));
      // Clients only listen; anything they send is ignored (and capped by maxPayload).
      ws.send(JSON.stringify({ type: 'snapshot', serviceAvailable: options.registry.serviceAvailable, readers: options.registry.readers().map(readerJson) }));
    });
  });

  app.addHook('onClose', async () => {
    pending?.close();
    options.registry.off('event', broadcast);
    for (const ws of clients) ws.terminate();
    wss.close();
  });

  return app;
}
