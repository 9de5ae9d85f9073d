import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CardBridgeError } from '../../errors.js';
import { canonicalOrigin } from '../../config/origin-policy.js';
import { NHI_OK, NHI_UNKNOWN_COMMAND, type NhiOperation, nhiErrorCode } from './error-codes.js';
import {
  NHI_HTTP_DEFAULT_PORT,
  NHI_HTTPS_DEFAULT_PORT,
  NHI_HTTP_HOST_NAMES,
  type NhiListenerOptions,
  createNhiFastify,
  installGuardAndPages,
  nhiGuardOptions,
  ownOriginsOf,
} from './common.js';
import { type LegacyBasic, type NhiCaller, NhiLegacyOperations, failureCode } from './operations.js';
import { AUTH_HTML, AUTH_JS, securePage } from './pages.js';
import { encodeJsonBitmap } from './status-bitmap.js';

export { NHI_HTTP_DEFAULT_PORT, NHI_HTTPS_DEFAULT_PORT };

export interface NhiHttpAppOptions extends NhiListenerOptions {
  /** 59002 is HTTPS, 59001 plain HTTP (http://localhost is a secure context to browsers). */
  https?: { key: string | Buffer; cert: string | Buffer };
  bodyLimitBytes?: number;
}

/**
 * Reply field names. `result` … `sign` are those of specs/nhi-agent-protocols.md section B; the
 * two encryption results have no published name, so these are cardbridge's (docs/compatibility.md).
 */
export const ENCRYPT_PWD_FIELD = 'encrypt_pwd';
export const ENCRYPT_BASIC_FIELD = 'encrypt_basic';

type Reply = Record<string, string>;

function basicFields(basic: LegacyBasic): Reply {
  return {
    card_no: basic.cardNo,
    as_id: basic.id,
    name: basic.name,
    birthday: basic.birth,
    sex: basic.sex,
    card_termination: basic.termination,
  };
}

/**
 * The request body as an object. nhiicc.host.js posts with jQuery's `$.post(url, jsonText)`,
 * i.e. `Content-Type: application/x-www-form-urlencoded` with a JSON text as the body; other
 * pages send real JSON or form fields. All three are read; nothing else is.
 */
function bodyFields(body: unknown): Record<string, unknown> {
  const text = typeof body === 'string' ? body.trim() : '';
  if (text === '') return {};
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // fall through: not JSON
    }
    throw new CardBridgeError('InvalidInput', 'The body is not a JSON object');
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** Refusals in the protocol's own format: `{"result":"8201"}` (and no CORS headers). */
function refuse(reply: FastifyReply, error: CardBridgeError): FastifyReply {
  const limited = error.code === 'RateLimited';
  if (limited) reply.header('Retry-After', '1');
  return reply
    .code(limited ? 429 : 403)
    .type('application/json; charset=utf-8')
    .send({ result: nhiErrorCode(error, 'GetBasic') });
}

/**
 * The NHI agent's HTTP listeners (`http://localhost:59001`, `https://localhost:59002`): the JSON
 * API of specs/nhi-agent-protocols.md section B, the status images, and the `auth.html` popup.
 * Every request passes the shared guard first (loopback peer, Host, Origin allow-list, rate limit);
 * allowed origins get exact-origin CORS, others a refusal and nothing else.
 */
export async function buildNhiHttpApp(options: NhiHttpAppOptions): Promise<FastifyInstance> {
  const scheme = options.https ? 'https' : 'http';
  const listener = options.https ? 'nhi-https' : 'nhi-http';
  const app = createNhiFastify(options, options.https, options.bodyLimitBytes ?? 4 * 1024);
  const ownOrigins = ownOriginsOf(scheme, NHI_HTTP_HOST_NAMES, options.port);
  const guard = nhiGuardOptions(options, NHI_HTTP_HOST_NAMES, ownOrigins, refuse);
  installGuardAndPages(app, guard);

  // Every body is read as text and interpreted by bodyFields (see there for why).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error, request, reply) => {
    const { code, statusCode } = error as { code?: string; statusCode?: number };
    const tooLarge = code === 'FST_ERR_CTP_BODY_TOO_LARGE';
    if (!statusCode || statusCode >= 500) request.log.error({ err: error }, 'unexpected error');
    return reply
      .code(tooLarge ? 413 : 200)
      .header('Cache-Control', 'no-store')
      .send({ result: nhiErrorCode(new CardBridgeError('InvalidInput', (error as Error).message), 'GetVersion') });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ result: NHI_UNKNOWN_COMMAND }));

  const operations = new NhiLegacyOperations(options);
  const callerOf = (request: FastifyRequest): NhiCaller => ({ listener, origin: ownOrigins.has(request.callerOrigin ?? '') ? undefined : request.callerOrigin });

  /** Runs one API function: `{"result":"0000", …fields}` or `{"result":"<code>"}`, always HTTP 200 (pages read `result`). */
  const api = (operation: NhiOperation, work: (fields: Record<string, unknown>, caller: NhiCaller) => Promise<Reply> | Reply) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('Cache-Control', 'no-store');
      let fields: Record<string, unknown>;
      try {
        fields = bodyFields(request.body);
      } catch {
        return reply.send({ result: NHI_UNKNOWN_COMMAND });
      }
      try {
        const answer = await work(fields, callerOf(request));
        return reply.send({ result: NHI_OK, ...answer });
      } catch (e) {
        return reply.send({ result: failureCode(e, operation) });
      }
    };

  const signInput = (random: unknown): string => {
    if (typeof random !== 'string') return '';
    // nhiicc.host.js's H_Sign sends version + random (20), its AuthHC only the random (16).
    return /^\d{16}$/.test(random) ? `${operations.getVersion()}${random}` : random;
  };

  const password = (pwd: unknown): string => (typeof pwd === 'string' ? pwd : '');

  app.post('/api/GetVersion', api('GetVersion', () => ({ version: operations.getVersion() })));
  app.post('/api/GetRandom', api('GetRandom', () => ({ random: operations.getRandom() })));
  app.post('/api/GetBasic', api('GetBasic', async (_f, caller) => basicFields(await operations.getBasic(caller))));
  app.post('/api/SignHC', api('H_Sign', async (f, caller) => ({ sign: await operations.hSign(caller, signInput(f.random)) })));
  app.post('/api/EncryptPwd', api('EnCrypt', async (f, caller) => ({ [ENCRYPT_PWD_FIELD]: await operations.enCrypt(caller, password(f.pwd)) })));
  app.post('/api/GetEncryptBasic', api('SecureGetBasic', async (_f, caller) => ({ [ENCRYPT_BASIC_FIELD]: await operations.secureGetBasic(caller) })));

  // ——— status images: JSON in pixels, readable through a canvas by allowed origins only ———
  // Whether there is a service, a reader and an NHI card is the registry's decision (locate).
  const status = async (): Promise<Reply> => {
    try {
      options.registry?.locateReaders({});
      return { result: NHI_OK, version: operations.getVersion() };
    } catch (e) {
      return { result: nhiErrorCode(e, 'GetVersion'), version: operations.getVersion() };
    }
  };
  const cardStatus = async (): Promise<Reply> => {
    if (!options.registry) return { result: nhiErrorCode(new CardBridgeError('Unavailable', ''), 'GetVersion') };
    try {
      await options.registry.locate({ kind: 'nhi' });
      return { result: NHI_OK };
    } catch (e) {
      return { result: nhiErrorCode(e, 'GetBasic') };
    }
  };
  const bitmap = (content: () => Promise<Reply>) => async (_request: FastifyRequest, reply: FastifyReply) =>
    reply
      .type('image/bmp')
      .header('Cache-Control', 'no-store')
      // Pages that may not read the pixels may not even embed the image.
      .header('Cross-Origin-Resource-Policy', 'same-origin')
      .send(encodeJsonBitmap(await content()));
  for (const path of ['/GetStatus.bmp', '/api/GetStatus.bmp']) app.get(path, bitmap(status));
  for (const path of ['/GetCardStatus.bmp', '/api/GetCardStatus.bmp']) app.get(path, bitmap(cardStatus));

  // ——— the auth.html popup (nhiicc.host.js PopupAuthHC) ———
  for (const path of ['/auth.html', '/api/auth.html']) app.get(path, async (_request, reply) => securePage(reply, 'text/html; charset=utf-8').send(AUTH_HTML));
  app.get('/auth.js', async (_request, reply) => securePage(reply, 'text/javascript; charset=utf-8').send(AUTH_JS));

  /**
   * The popup's own call: only the popup page (our own origin) may make it, for the origin the
   * browser attested in the page's message; that origin must be on the allow-list before the
   * card is touched. Runs nhiicc.host.js's AuthHC sequence and answers the merged fields.
   */
  app.post('/auth/run', async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    const site = request.headers['sec-fetch-site'];
    if (!ownOrigins.has(request.callerOrigin ?? '') || (site !== undefined && site !== 'same-origin')) {
      return refuse(reply, new CardBridgeError('NotAllowedOrigin', 'Only the popup page may run the popup flow'));
    }
    let fields: Record<string, unknown>;
    try {
      fields = bodyFields(request.body);
    } catch {
      return reply.send({ result: NHI_UNKNOWN_COMMAND });
    }
    const origin = typeof fields.origin === 'string' ? canonicalOrigin(fields.origin) : undefined;
    if (!origin || ownOrigins.has(origin) || !options.sites.policy('nhi').allows(origin)) {
      if (options.logger) options.logger.warn({ origin: fields.origin }, 'nhi auth.html popup refused a site outside the allow-list');
      return refuse(reply, new CardBridgeError('NotAllowedOrigin', 'The opener is not allowed'));
    }
    const caller: NhiCaller = { listener, origin };
    let step: NhiOperation = 'GetVersion';
    try {
      const version = operations.getVersion();
      step = 'GetRandom';
      const random = operations.getRandom();
      step = 'GetBasic';
      const basic = basicFields(await operations.getBasic(caller));
      step = 'H_Sign';
      const sign = await operations.hSign(caller, `${version}${random}`);
      step = 'EnCrypt';
      const encryptedPwd = await operations.enCrypt(caller, password(fields.pwd));
      step = 'SecureGetBasic';
      const encryptedBasic = await operations.secureGetBasic(caller);
      return reply.send({ result: NHI_OK, version, random, ...basic, sign, [ENCRYPT_PWD_FIELD]: encryptedPwd, [ENCRYPT_BASIC_FIELD]: encryptedBasic });
    } catch (e) {
      return reply.send({ result: failureCode(e, step) });
    }
  });

  return app;
}
