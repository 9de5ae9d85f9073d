import type { FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { CardBridgeError } from '../../errors.js';
import { SerialQueue } from '../../util/serial-queue.js';
import { checkPeer, rateLimitBucket } from '../security/guard.js';
import { NHI_UNKNOWN_COMMAND, type NhiOperation, nhiErrorCode } from './error-codes.js';
import { NHI_WS_DEFAULT_PORT, NHI_WS_HOST_NAMES, type NhiListenerOptions, createNhiFastify, installGuardAndPages, nhiGuardOptions, ownOriginsOf } from './common.js';
import { type NhiCaller, NhiLegacyOperations, basicCsv, failureCode } from './operations.js';
import { NHI_SERVER_HEADER } from './pages.js';

export { NHI_WS_DEFAULT_PORT };

export interface NhiWsAppOptions extends NhiListenerOptions {
  /** The official agent is wss only (pages on https cannot open ws://). */
  https: { key: string | Buffer; cert: string | Buffer };
  /** Frames longer than this close the connection (default 1 KiB; the longest command is ~60 bytes). */
  maxMessageBytes?: number;
  /** Requests a connection may have waiting (default 8); more are answered 8201. */
  maxQueuedPerConnection?: number;
}

/** The commands of specs/nhi-agent-protocols.md section A, by prefix. */
const H_SIGN = 'H_Sign?Random=';
const ENCRYPT = 'EnCrypt?Pwd=';
const SECURE_BASIC = 'SecureGetBasicWithParam?Pwd=';

/** The operation a frame asks for (for the error code and logs); undefined for unknown commands. */
function operationOf(text: string): NhiOperation | undefined {
  if (text === 'GetVersion' || text === 'GetBasic' || text === 'GetRandom') return text;
  if (text.startsWith(H_SIGN)) return 'H_Sign';
  if (text.startsWith(ENCRYPT)) return 'EnCrypt';
  if (text.startsWith(SECURE_BASIC)) return 'SecureGetBasic';
  return undefined;
}

/** Refusals of plain HTTP requests on this port: the bare numeric code, as the protocol answers. */
function refuse(reply: FastifyReply, error: CardBridgeError): FastifyReply {
  const limited = error.code === 'RateLimited';
  if (limited) reply.header('Retry-After', '1');
  return reply
    .code(limited ? 429 : 403)
    .type('text/plain; charset=utf-8')
    .send(nhiErrorCode(error, 'GetBasic'));
}

/**
 * The NHI agent's WebSocket listener (`wss://localhost:7777/echo`, also reached as
 * `iccert.nhi.gov.tw:7777`): the plain-text protocol of specs/nhi-agent-protocols.md section A,
 * and `GET /`, the page users open to accept the certificate.
 *
 * The upgrade passes the shared guard's checks (loopback peer, Host, Origin allow-list) before it
 * is accepted: a page outside the allow-list gets `403` on the upgrade and never a frame. There is
 * no consent step — the legacy protocol answers at once, as pages expect — so every card read is
 * audited with the page's origin instead (docs/compatibility.md).
 */
export async function buildNhiWsApp(options: NhiWsAppOptions): Promise<FastifyInstance> {
  const app = createNhiFastify(options, options.https, 16 * 1024);
  const ownOrigins = ownOriginsOf('https', NHI_WS_HOST_NAMES, options.port);
  const guard = nhiGuardOptions(options, NHI_WS_HOST_NAMES, ownOrigins, refuse);
  installGuardAndPages(app, guard);

  const operations = new NhiLegacyOperations(options);
  const maxQueued = options.maxQueuedPerConnection ?? 8;
  const log = options.logger || undefined;

  async function answer(text: string, caller: NhiCaller): Promise<string> {
    const operation = operationOf(text);
    try {
      switch (operation) {
        case 'GetVersion':
          return `GetVersion:${operations.getVersion()}`;
        case 'GetBasic':
          return `GetBasic:${basicCsv(await operations.getBasic(caller))}`;
        case 'GetRandom':
          return `GetRandom:${operations.getRandom()}`;
        case 'H_Sign':
          return `H_Sign:${await operations.hSign(caller, text.slice(H_SIGN.length))}`;
        case 'EnCrypt':
          return `EnCrypt:${await operations.enCrypt(caller, text.slice(ENCRYPT.length))}`;
        case 'SecureGetBasic':
          return `SecureGetBasicWithParam:${await operations.secureGetBasic(caller)}`;
        default:
          return NHI_UNKNOWN_COMMAND;
      }
    } catch (e) {
      const code = failureCode(e, operation ?? 'GetVersion');
      log?.info({ command: operation, code }, 'nhi-ws request failed');
      return code;
    }
  }

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxMessageBytes ?? 1024 });
  wss.on('headers', (headers) => headers.push(`Server: ${NHI_SERVER_HEADER}`));
  const clients = new Set<WebSocket>();

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = request.url?.split('?')[0];
    const check = checkPeer(guard, request.socket.remoteAddress, request.headers.host, request.headers.origin);
    if (path !== '/echo' || !check.ok) {
      if (!check.ok) log?.warn({ origin: request.headers.origin, host: request.headers.host }, `nhi-ws upgrade refused: ${check.error?.message}`);
      const status = path !== '/echo' ? '404 Not Found' : '403 Forbidden';
      socket.end(`HTTP/1.1 ${status}\r\nServer: ${NHI_SERVER_HEADER}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      clients.add(ws);
      const caller: NhiCaller = { listener: 'nhi-ws', origin: check.origin };
      const bucket = rateLimitBucket(check, request.headers.origin, request.headers['sec-fetch-site']);
      const queue = new SerialQueue();
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => clients.delete(ws));
      ws.on('message', (data, isBinary) => {
        const send = (reply: string) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(reply);
        };
        if (!guard.rateLimiter!.take(bucket) || queue.length >= maxQueued) {
          send(nhiErrorCode(new CardBridgeError('RateLimited', 'Too many requests'), 'GetVersion'));
          return;
        }
        // Text frames only; the payload is never logged (it can carry a password).
        const text = isBinary ? '' : (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8');
        void queue.run(() => answer(text, caller)).then(send);
      });
    });
  });

  app.addHook('onClose', async () => {
    for (const ws of clients) ws.terminate();
    wss.close();
  });

  return app;
}
