import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CardBridgeError } from '../../errors.js';
import { isAllowedHost, isLoopbackAddress } from './loopback.js';
import { type OriginPolicy, canonicalOrigin } from '../../config/origin-policy.js';
import type { RateLimiter } from './rate-limit.js';

export interface GuardOptions {
  /** Host header values this listener answers to (see allowedHosts). */
  hosts: Set<string>;
  /** Read on every request so allow-list changes apply at once. */
  policy: () => OriginPolicy;
  /** The listener's own origins (its trusted pages); always allowed, never given CORS. */
  ownOrigins?: ReadonlySet<string>;
  rateLimiter?: RateLimiter;
  /** Methods and headers announced to allowed origins on preflight. */
  corsMethods?: string;
  corsHeaders?: string;
  /**
   * GET paths any origin may load (public code without data, e.g. the client library): only
   * the loopback and Host checks apply, and they are answered with `Access-Control-Allow-Origin: *`.
   */
  publicPaths?: ReadonlySet<string>;
  /** Answers a refused request in the listener's own wire format. */
  refuse(reply: FastifyReply, error: CardBridgeError): FastifyReply;
}

export interface PeerCheck {
  ok: boolean;
  error?: CardBridgeError;
  /** The caller's canonical origin when it sent one and it is allowed. */
  origin?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The allowed, canonical Origin of the caller, if it sent one. */
    callerOrigin?: string;
  }
}

const notAllowed = (message: string) => new CardBridgeError('NotAllowedOrigin', message);

/**
 * The checks every listener applies before anything else, shared by HTTP requests and
 * WebSocket upgrades: loopback peer, expected Host (DNS rebinding), allowed Origin.
 */
export function checkPeer(
  options: Pick<GuardOptions, 'hosts' | 'policy' | 'ownOrigins'>,
  remoteAddress: string | undefined,
  host: string | undefined,
  originHeader: string | undefined,
): PeerCheck {
  if (!isLoopbackAddress(remoteAddress)) return { ok: false, error: notAllowed('Only programs on this computer may use cardbridge') };
  if (!isAllowedHost(host, options.hosts)) return { ok: false, error: notAllowed(`Unexpected Host "${host ?? ''}"`) };
  if (originHeader === undefined) return { ok: true };
  const origin = canonicalOrigin(originHeader);
  if (origin && options.ownOrigins?.has(origin)) return { ok: true };
  if (!origin || !options.policy().allows(origin)) {
    return { ok: false, error: notAllowed(`The site ${origin ?? JSON.stringify(originHeader)} is not allowed to use cardbridge`) };
  }
  return { ok: true, origin };
}

/**
 * Which token bucket a request spends. Each allowed site has its own; cardbridge's own pages
 * (their fetches carry its origin, their navigations are same-origin or typed by the user)
 * share one that no page can drain; a browser request without an Origin from another site (an
 * <img> or <script> flood) and a local program without Sec-Fetch headers get one each — so a
 * hostile page can only slow itself down, never the approval window or the CLI.
 */
export function rateLimitBucket(check: PeerCheck, originHeader: string | undefined, fetchSite: string | string[] | undefined): string {
  if (check.origin) return `site ${check.origin}`;
  if (originHeader !== undefined) return 'cardbridge'; // an own origin (others were refused or are allowed sites)
  if (fetchSite === 'same-origin' || fetchSite === 'none') return 'cardbridge';
  if (fetchSite === undefined) return 'local program';
  return 'browser without Origin';
}

function setCors(reply: FastifyReply, origin: string): void {
  reply.header('Access-Control-Allow-Origin', origin);
  reply.header('Vary', 'Origin');
}

/** Installs the checks as the first hook of a listener. */
export function installGuard(app: FastifyInstance, options: GuardOptions): void {
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const originHeader = request.headers.origin;
    if (request.method === 'GET' && options.publicPaths?.has(request.url.split('?')[0]!)) {
      const peer = checkPeer(options, request.socket.remoteAddress, request.headers.host, undefined);
      if (!peer.ok) return options.refuse(reply, peer.error!);
      reply.header('Access-Control-Allow-Origin', '*');
      return undefined;
    }
    const check = checkPeer(options, request.socket.remoteAddress, request.headers.host, originHeader);
    if (!check.ok) return options.refuse(reply, check.error!);
    if (check.origin) {
      request.callerOrigin = check.origin;
      setCors(reply, check.origin);
    } else if (originHeader !== undefined) {
      request.callerOrigin = canonicalOrigin(originHeader);
    }
    if (request.method === 'OPTIONS' && check.origin) {
      reply.header('Access-Control-Allow-Methods', options.corsMethods ?? 'GET, POST, DELETE');
      reply.header('Access-Control-Allow-Headers', options.corsHeaders ?? 'Content-Type');
      reply.header('Access-Control-Max-Age', '600');
      // Chrome's Private Network Access preflight for a public page calling localhost.
      if (request.headers['access-control-request-private-network'] === 'true') {
        reply.header('Access-Control-Allow-Private-Network', 'true');
      }
      return reply.code(204).send();
    }
    const key = rateLimitBucket(check, originHeader, request.headers['sec-fetch-site']);
    if (options.rateLimiter && !options.rateLimiter.take(key)) {
      return options.refuse(reply, new CardBridgeError('RateLimited', 'Too many requests; slow down'));
    }
    return undefined;
  });
}
