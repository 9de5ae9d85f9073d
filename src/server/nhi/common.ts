import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import type { SitesStore } from '../../config/sites-store.js';
import type { CardBridgeError } from '../../errors.js';
import type { ReaderRegistry } from '../../readers/types.js';
import type { NhiService } from '../../services/nhi/nhi-service.js';
import type { AuditLog } from '../shared/audit.js';
import { type GuardOptions, installGuard } from '../security/guard.js';
import { allowedHosts } from '../security/loopback.js';
import { RateLimiter } from '../security/rate-limit.js';
import type { RandomSource } from './legacy-crypto.js';
import { NHI_UNKNOWN_COMMAND } from './error-codes.js';
import { NHI_SERVER_HEADER, PAGE_CSS, TRUSTED_PAGE_HTML, securePage } from './pages.js';

export const NHI_WS_DEFAULT_PORT = 7777;
export const NHI_HTTP_DEFAULT_PORT = 59001;
export const NHI_HTTPS_DEFAULT_PORT = 59002;

/** The names pages use for the agent; `iccert.nhi.gov.tw` only on the WebSocket port (the installer's hosts entry). */
export const NHI_WS_HOST_NAMES = ['localhost', '127.0.0.1', 'iccert.nhi.gov.tw'] as const;
export const NHI_HTTP_HOST_NAMES = ['localhost', '127.0.0.1'] as const;

/** What both NHI listeners take. */
export interface NhiListenerOptions {
  nhi: NhiService;
  /** The allow-list (default https://*.gov.tw), re-read on every request. */
  sites: SitesStore;
  /** One line per card read, with the requesting origin. */
  audit: AuditLog;
  /** Reader and card presence for the status images and audit lines. */
  registry?: ReaderRegistry;
  port: number;
  logger?: Logger | false;
  rateLimit?: { perSecond: number; burst: number };
  requestTimeoutMs?: number;
  /** Tests fix the date (section C) and pad78's filler bytes. */
  now?: () => Date;
  random?: RandomSource;
}

export function createNhiFastify(options: NhiListenerOptions, https: { key: string | Buffer; cert: string | Buffer } | undefined, bodyLimit: number): FastifyInstance {
  const fastifyOptions: FastifyServerOptions & { https?: { key: string | Buffer; cert: string | Buffer } } = {
    loggerInstance: options.logger || undefined,
    logger: options.logger ? undefined : false,
    bodyLimit,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    connectionTimeout: options.requestTimeoutMs ?? 30_000,
    trustProxy: false,
    // A URL fastify cannot decode (e.g. "%zz") is answered in the agent's format, not fastify's own.
    frameworkErrors: (_error: Error, _request: unknown, reply: FastifyReply) =>
      reply.code(400).header('Server', NHI_SERVER_HEADER).type('application/json; charset=utf-8').send({ result: NHI_UNKNOWN_COMMAND }),
  } as FastifyServerOptions;
  // A client that connects and never starts TLS is bounded too (Node's default is 120 s).
  if (https) fastifyOptions.https = { ...https, handshakeTimeout: Math.min(options.requestTimeoutMs ?? 30_000, 10_000) } as typeof https;
  const app = Fastify(fastifyOptions as FastifyServerOptions) as unknown as FastifyInstance;
  // Every answer says it is the agent, as the official one does — refusals included.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('Server', NHI_SERVER_HEADER);
  });
  return app;
}

export function nhiGuardOptions(
  options: NhiListenerOptions,
  names: readonly string[],
  ownOrigins: ReadonlySet<string>,
  refuse: (reply: FastifyReply, error: CardBridgeError) => FastifyReply,
): GuardOptions {
  return {
    hosts: allowedHosts([...names, '::1'], options.port),
    policy: () => options.sites.policy('nhi'),
    ownOrigins,
    rateLimiter: new RateLimiter(options.rateLimit?.perSecond ?? 20, options.rateLimit?.burst ?? 40),
    corsMethods: 'GET, POST',
    corsHeaders: 'Content-Type',
    refuse,
  };
}

/** The listener's own origins (its pages), e.g. http://localhost:59001. */
export function ownOriginsOf(scheme: 'http' | 'https', names: readonly string[], port: number): Set<string> {
  return new Set([...names, '[::1]'].map((name) => `${scheme}://${name}:${port}`));
}

export function installGuardAndPages(app: FastifyInstance, guard: GuardOptions): void {
  installGuard(app, guard);
  app.get('/', async (_request, reply) => securePage(reply, 'text/html; charset=utf-8').send(TRUSTED_PAGE_HTML));
  app.get('/nhi.css', async (_request, reply) => securePage(reply, 'text/css; charset=utf-8').send(PAGE_CSS));
}
