import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import { CardBridgeError, asCardBridgeError, isCardBridgeError } from '../../errors.js';
import type { PinUse } from '../../services/moica/moica-service.js';
import type { ReaderRegistry } from '../../readers/types.js';
import type { MoicaService } from '../../services/moica/moica-service.js';
import type { SitesStore } from '../../config/sites-store.js';
import { VERSION } from '../../version.js';
import { installGuard } from '../security/guard.js';
import { PROBE_GIF } from '../shared/probe.js';
import { allowedHosts } from '../security/loopback.js';
import { canonicalOrigin } from '../../config/origin-policy.js';
import { RateLimiter } from '../security/rate-limit.js';
import { type AuditLog, loggerAudit } from '../shared/audit.js';
import { type HipkiOperation, HipkiRequestError, RET, hipkiFailure } from './ret-codes.js';
import { type TbsPackage, field, funcOf, parseTbsPackage } from './tbs-package.js';
import { type HipkiContext, decryptData, makeSignature, pkcs11Info, cardOf } from './operations.js';
import { MAX_BMP_TEXT, asciiJson, textToBmp } from '../shared/json-bitmap.js';
import { trustedPage } from '../shared/trusted-page.js';
import {
  ADD_DOMAIN_HTML,
  ADD_DOMAIN_JS,
  CHT_POPUP_FORM_HTML,
  UNSUPPORTED_POPUP_FORM_HTML,
  POPUP_FORM_HTML,
  POPUP_JS,
  SELF_TEST_HTML,
  SELF_TEST_JS,
  STYLE_CSS,
} from './pages.js';

export const HIPKI_DEFAULT_PORT = 61161;
export const HIPKI_HOST_NAMES = ['127.0.0.1', 'localhost'] as const;

/**
 * The version reported to pages. They compare it with the official minimums (Windows
 * 1.3.4.103328, Mac 1.3.4.13, Linux 1.3.4.3) both as plain strings and as numbers, so it must
 * be greater either way: `1.3.4.999999` is ("1.3.4.9…" > "1.3.4.3…" as strings, 999999 >
 * 103328 as numbers). See docs/compatibility.md.
 */
export const HIPKI_SERVER_VERSION = '1.3.4.999999';

/** The header the bridge's own popup uses to name the site it works for (checked against the allow-list). */
export const SITE_HEADER = 'x-hipki-site';

/**
 * The header cardbridge's own popup sets after the user confirmed, in the popup, that the
 * card's last PIN try may be spent. Honoured only on requests from the bridge's own origin
 * (a page cannot send it: it is not in the CORS allow-list, and the Origin would be the page's).
 */
export const CONFIRM_LAST_TRY_HEADER = 'x-cardbridge-confirm-last-try';

export interface HipkiAppOptions {
  registry: ReaderRegistry;
  moica: MoicaService;
  sites: SitesStore;
  audit?: AuditLog;
  /** The port the listener is reachable on, for the Host check (default 61161). */
  port?: number;
  logger?: Logger | false;
  /** The version pages see (default HIPKI_SERVER_VERSION). */
  serverVersion?: string;
  rateLimit?: { perSecond: number; burst: number };
  /** Request bodies (a tbsPackage may carry a document to sign): default 1 MiB. */
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
  /** Clock for checkValidity. */
  now?: () => Date;
}

type Reply = Record<string, unknown>;

/** Who a card operation is for, as the audit line and the allow-list see it. */
interface Caller {
  origin: string;
}

/** The popups the vendor library (ChtICToken.js, eID build) opens for functions cardbridge lacks. */
const VENDOR_POPUP_PATHS = ['/eIDPM/ChtPopupFormEIDPM', '/CardManagement/CMCPopForm', '/PrintCard/ChtPopupFormPrintCard', '/MOEACA/ChtPopupFormMOEACA'];

const OWN_PAGE = 'cardbridge (own page)';
const LOCAL_PROGRAM = 'local program (no Origin)';
const USER = 'user (address bar)';

/** Each endpoint's func in replies that carry no request func. */
const PATH_FUNCS: Record<string, string> = { '/sign': 'sign', '/decrypt': 'decrypt', '/umakeSig': 'umakeSig', '/pkcs11info': 'pkcs11info', '/p11Image.bmp': 'pkcs11info' };

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? '/';
}

/** Pages served by the bridge: own scripts and styles only, never framed, talk only to us. */
function page(reply: FastifyReply, type: string, body: string): FastifyReply {
  return trustedPage(reply, type).send(body);
}

function json(reply: FastifyReply, body: Reply, status = 200): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff').send(JSON.stringify(body));
}

/**
 * The HiPKI Local Server drop-in (specs/hipki-local-server.md): plain HTTP on loopback, the
 * same guard as every listener (loopback peer, Host, Origin allow-list), refusals and failures
 * in HiPKI JSON. Legacy pages send the PIN themselves; it is accepted on this listener only,
 * used once, never logged.
 */
export async function buildHipkiApp(options: HipkiAppOptions): Promise<FastifyInstance> {
  const port = options.port ?? HIPKI_DEFAULT_PORT;
  const serverVersion = options.serverVersion ?? HIPKI_SERVER_VERSION;
  const ownOrigins = new Set(HIPKI_HOST_NAMES.map((h) => `http://${h}:${port}`));
  const audit = options.audit ?? loggerAudit(options.logger || undefined);
  const log = options.logger || undefined;
  const context: HipkiContext = { registry: options.registry, moica: options.moica, now: options.now ?? (() => new Date()) };

  const app = Fastify({
    loggerInstance: log,
    logger: log ? undefined : false,
    // fastify's own request lines would carry the URL's query; ours (below) carry the path only.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    requestTimeout: options.requestTimeoutMs ?? 180_000,
    connectionTimeout: options.requestTimeoutMs ?? 180_000,
    trustProxy: false,
    // A URL fastify cannot decode (e.g. "%zz") is answered in HiPKI JSON too, not in fastify's own format.
    frameworkErrors: (_error: Error, _request: FastifyRequest, reply: FastifyReply) =>
      json(reply, { ...hipkiFailure(new HipkiRequestError(RET.PARAM_ERROR, 'Malformed URL'), 'other') }, 400),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  installGuard(app, {
    hosts: allowedHosts([...HIPKI_HOST_NAMES, '::1'], port),
    policy: () => options.sites.policy('hipki'),
    ownOrigins,
    rateLimiter: new RateLimiter(options.rateLimit?.perSecond ?? 20, options.rateLimit?.burst ?? 40),
    corsMethods: 'GET, POST',
    corsHeaders: 'Content-Type',
    refuse: (reply, error) => {
      const failure = hipkiFailure(error, 'other');
      const func = PATH_FUNCS[pathOf(reply.request)];
      return json(reply, { ...(func ? { func } : {}), ...failure }, error.code === 'RateLimited' ? 429 : 403);
    },
  });

  // Every body is taken as text: pages send form bodies under various content types (or none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  // One line per request: method, path (never the query or body: a tbsPackage carries the PIN).
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { method: request.method, path: pathOf(request), status: reply.statusCode, origin: request.callerOrigin, ms: Math.round(reply.elapsedTime) },
      'hipki request',
    );
  });

  /**
   * The caller of a card operation. An allowed Origin is the site. The bridge's own pages are
   * trusted; its popup names the site it works for in X-HiPKI-Site, which must be allowed.
   * Without Origin: a browser (Sec-Fetch-* headers) is trusted only for same-origin requests
   * and the user's own address-bar GETs; any other browser request is a foreign page (a form
   * POST or a no-cors image) and is refused. A request with neither header is a local
   * program, which could reach the card through pcscd anyway.
   */
  function callerOf(request: FastifyRequest): Caller {
    const origin = request.callerOrigin;
    if (origin !== undefined) {
      if (!ownOrigins.has(origin)) return { origin };
      const named = request.headers[SITE_HEADER];
      if (named === undefined) return { origin: OWN_PAGE };
      const site = canonicalOrigin(typeof named === 'string' ? named : undefined);
      if (!site || !options.sites.policy('hipki').allows(site)) {
        throw new CardBridgeError('NotAllowedOrigin', `The site ${site ?? JSON.stringify(named)} is not allowed to use cardbridge`);
      }
      return { origin: site };
    }
    const fetchSite = request.headers['sec-fetch-site'];
    const browser = fetchSite !== undefined || request.headers['sec-fetch-mode'] !== undefined || request.headers['sec-fetch-dest'] !== undefined;
    if (!browser) return { origin: LOCAL_PROGRAM };
    if (fetchSite === 'same-origin') return { origin: OWN_PAGE };
    if (fetchSite === 'none' && request.method === 'GET') return { origin: USER };
    throw new CardBridgeError('NotAllowedOrigin', 'A browser request without an allowed Origin');
  }

  function failureReply(func: string | undefined, error: unknown, operation: HipkiOperation, extra: Reply = {}): Reply {
    const failure = hipkiFailure(error, operation);
    return { ...(func !== undefined ? { func } : {}), ...failure, ...extra };
  }

  function logUnexpected(request: FastifyRequest, error: unknown): void {
    if (!(error instanceof CardBridgeError) && !(error instanceof HipkiRequestError)) {
      request.log.error({ err: { message: (error as Error)?.message, stack: (error as Error)?.stack } }, 'unexpected error in the HiPKI listener');
    }
  }

  function record(caller: Caller | undefined, operation: string, reader: string, error?: unknown): void {
    let result = 'ok';
    if (error !== undefined) result = error instanceof HipkiRequestError ? `ret_code 0x${error.retCode.toString(16)}` : asCardBridgeError(error).code;
    audit.record({ origin: caller?.origin ?? 'unknown', operation: `hipki.${operation}`, card: 'moica', reader, result });
  }

  // ——— version probe ———
  app.get('/', async (_request, reply) =>
    reply.type('text/plain; charset=utf-8').header('Cache-Control', 'no-store').send(`cardbridge ${VERSION}, HiPKI Local Server compatible\nversion:${serverVersion}\n`),
  );

  // ——— pkcs11info ———
  async function infoReply(request: FastifyRequest, withCert: boolean, operation: string): Promise<Reply> {
    let caller: Caller | undefined;
    try {
      caller = callerOf(request);
      const { slots } = await pkcs11Info(context, withCert, (reader, e) => request.log.warn({ reader, code: asCardBridgeError(e).code }, 'pkcs11info: card not readable'));
      record(caller, operation, slots.map((s) => s.slotDescription).join(', '));
      return { func: 'pkcs11info', ret_code: RET.OK, last_error: 0, serverVersion, slots };
    } catch (e) {
      logUnexpected(request, e);
      if (caller) record(caller, operation, '', e);
      return failureReply('pkcs11info', e, 'info', { serverVersion });
    }
  }
  const wantsCert = (request: FastifyRequest) => String((request.query as Record<string, unknown>)?.withcert ?? '').toLowerCase() === 'true';
  const info = async (request: FastifyRequest, reply: FastifyReply) => json(reply, await infoReply(request, wantsCert(request), wantsCert(request) ? 'pkcs11info.withcert' : 'pkcs11info'));
  app.get('/pkcs11info', info);
  app.post('/pkcs11info', info);

  // ——— the client's detection probe (plain http: it answers even when the browser does not trust the certificate) ———
  app.get('/v1/probe.gif', async (_request, reply) =>
    reply.type('image/gif').header('Cache-Control', 'no-store').header('Cross-Origin-Resource-Policy', 'cross-origin').send(PROBE_GIF),
  );

  // ——— p11Image.bmp ———
  app.get('/p11Image.bmp', async (request, reply) => {
    const withCert = wantsCert(request);
    let body = await infoReply(request, withCert, 'p11Image');
    let text = asciiJson(body);
    if (text.length > MAX_BMP_TEXT) {
      body = failureReply('pkcs11info', new HipkiRequestError(RET.PARAM_ERROR, 'The answer does not fit in the image; use /pkcs11info'), 'info', { serverVersion });
      text = asciiJson(body);
    }
    return reply.type('image/bmp').header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff').send(textToBmp(text));
  });

  // ——— MakeSignature, umakeSig, DecryptData ———
  /** Parses, checks the caller, runs; failures become HiPKI JSON (HTTP 200, as pages expect). */
  async function operate(request: FastifyRequest, func: string, operation: HipkiOperation, work: (pkg: TbsPackage, caller: Caller, use: PinUse) => Promise<Reply>): Promise<Reply> {
    let caller: Caller | undefined;
    let pkg: TbsPackage | undefined;
    try {
      caller = callerOf(request);
      pkg = parseTbsPackage(request.body as string | undefined);
      return await work(pkg, caller, { confirmLastTry: fromOwnPage(request) && request.headers[CONFIRM_LAST_TRY_HEADER] === 'yes' });
    } catch (e) {
      logUnexpected(request, e);
      if (caller && pkg) record(caller, func, requestedReader(pkg), e);
      return { ...failureReply(func, e, operation), ...(await lastTryPrompt(request, e, pkg)) };
    }
  }

  /** The reader a failed request named, for the audit line ('' when none, or when the naming itself was wrong). */
  function requestedReader(pkg: TbsPackage): string {
    try {
      return cardOf(pkg).reader ?? '';
    } catch {
      return '';
    }
  }

  /** Sent by a page of this listener itself (the popups, the self-test), not by any web site. */
  function fromOwnPage(request: FastifyRequest): boolean {
    return request.callerOrigin !== undefined && ownOrigins.has(request.callerOrigin) && (request.headers['sec-fetch-site'] ?? 'same-origin') === 'same-origin';
  }

  /**
   * For cardbridge's own popup only: which card wants the last-try confirmation, so the popup
   * can show it before it re-posts with CONFIRM_LAST_TRY_HEADER. Web pages never get this.
   */
  async function lastTryPrompt(request: FastifyRequest, error: unknown, pkg: TbsPackage | undefined): Promise<Reply> {
    if (!isCardBridgeError(error, 'LastTryNeedsConfirmation') || !fromOwnPage(request) || !pkg) return {};
    try {
      const status = await options.moica.pinStatus(cardOf(pkg));
      return { confirmLastTry: { card: status.serialNumber, reader: status.reader } };
    } catch {
      return {}; // the card went away meanwhile: the popup shows the failure as it is
    }
  }

  const sign = async (pkg: TbsPackage, caller: Caller, use: PinUse) => {
    const signed = await makeSignature(context, pkg, use);
    record(caller, `sign ${signed.summary}`, signed.reader);
    return signed;
  };
  const withCardSN = (pkg: TbsPackage) => field(pkg, 'withCardSN')?.toLowerCase() !== 'false';

  app.post('/sign', async (request, reply) =>
    json(
      reply,
      await operate(request, 'sign', 'sign', async (pkg, caller, use) => {
        const signed = await sign(pkg, caller, use);
        return {
          func: 'sign',
          ret_code: RET.OK,
          last_error: 0,
          signature: signed.signature,
          certb64: signed.certb64,
          ...(withCardSN(pkg) ? { cardSN: signed.cardSN } : {}),
          version: serverVersion,
        };
      }),
    ),
  );

  app.post('/umakeSig', async (request, reply) =>
    json(
      reply,
      await operate(request, 'umakeSig', 'sign', async (pkg, caller, use) => {
        const signed = await sign(pkg, caller, use);
        return {
          func: 'umakeSig',
          ret_code: RET.OK,
          last_error: 0,
          data: { signature: signed.signature, certb64: signed.certb64, ...(withCardSN(pkg) ? { cardSN: signed.cardSN } : {}) },
          version: serverVersion,
        };
      }),
    ),
  );

  app.post('/decrypt', async (request, reply) =>
    json(
      reply,
      await operate(request, 'decrypt', 'decrypt', async (pkg, caller, use) => {
        const { plain, reader } = await decryptData(context, pkg, use);
        record(caller, 'decrypt', reader);
        return { func: 'decrypt', ret_code: RET.OK, last_error: 0, plain, version: serverVersion };
      }),
    ),
  );

  // ——— pages ———
  app.get('/popupForm', async (_request, reply) => page(reply, 'text/html; charset=utf-8', POPUP_FORM_HTML));
  app.get('/ChtPopupForm', async (_request, reply) => page(reply, 'text/html; charset=utf-8', CHT_POPUP_FORM_HTML));
  // ChtICToken.js opens these for functions cardbridge does not offer. Answering JSON would
  // leave the library waiting 170 s for a getTbs message and then report the component as
  // missing; a popup page that does the handshake answers "unsupported" at once.
  for (const path of VENDOR_POPUP_PATHS) {
    app.get(path, async (_request, reply) => page(reply, 'text/html; charset=utf-8', UNSUPPORTED_POPUP_FORM_HTML));
  }
  app.get('/selfTest.htm', async (_request, reply) => page(reply, 'text/html; charset=utf-8', SELF_TEST_HTML));
  app.get('/addDomain', async (_request, reply) => page(reply, 'text/html; charset=utf-8', ADD_DOMAIN_HTML));
  app.get('/hipki-ui/popup.js', async (_request, reply) => page(reply, 'text/javascript; charset=utf-8', POPUP_JS));
  app.get('/hipki-ui/selftest.js', async (_request, reply) => page(reply, 'text/javascript; charset=utf-8', SELF_TEST_JS));
  app.get('/hipki-ui/adddomain.js', async (_request, reply) => page(reply, 'text/javascript; charset=utf-8', ADD_DOMAIN_JS));
  app.get('/hipki-ui/style.css', async (_request, reply) => page(reply, 'text/css; charset=utf-8', STYLE_CSS));

  // ——— the user trusts a site (only from the bridge's own page) ———
  app.post('/addDomain', async (request, reply) => {
    if (!fromOwnPage(request)) {
      return json(reply, failureReply('addDomain', new CardBridgeError('NotAllowedOrigin', 'Only cardbridge’s own /addDomain page can add a site'), 'other'), 403);
    }
    const domain = new URLSearchParams(typeof request.body === 'string' ? request.body : '').get('domain')?.trim().toLowerCase() ?? '';
    if (!/^[a-z0-9.-]{1,253}(:[0-9]{1,5})?$/.test(domain) || domain.startsWith('.') || domain.includes('..')) {
      return json(reply, failureReply('addDomain', new HipkiRequestError(RET.PARAM_ERROR, 'Not a valid site name'), 'other'));
    }
    const origin = canonicalOrigin(`https://${domain}`);
    if (!origin) return json(reply, failureReply('addDomain', new HipkiRequestError(RET.PARAM_ERROR, 'Not a valid site name'), 'other'));
    try {
      const added = await options.sites.grantCapability(origin, 'hipki');
      audit.record({ origin, operation: 'hipki.addDomain', card: '-', reader: '-', result: added ? 'ok' : 'already allowed' });
      return json(reply, { func: 'addDomain', ret_code: RET.OK, last_error: 0, origin, added });
    } catch (e) {
      logUnexpected(request, e);
      return json(reply, failureReply('addDomain', e, 'other'));
    }
  });

  // ——— everything else: not supported, in HiPKI JSON with the request's func ———
  app.setNotFoundHandler(async (request, reply) => {
    const segment = pathOf(request).split('/').filter(Boolean).pop() ?? '';
    let func = funcOf(request.body) ?? segment;
    let failure: unknown = new HipkiRequestError(RET.UNSUPPORTED, `${request.method} ${pathOf(request)} is not supported`);
    try {
      callerOf(request);
      if (typeof request.body === 'string' && request.body.trim() !== '' && funcOf(request.body) === undefined) {
        try {
          parseTbsPackage(request.body);
        } catch (e) {
          if (e instanceof HipkiRequestError && e.retCode === RET.JSON_ERROR) failure = e;
        }
      }
    } catch (e) {
      failure = e;
      func = funcOf(request.body) ?? segment;
    }
    return json(reply, failureReply(func, failure, 'other'));
  });

  app.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const func = PATH_FUNCS[pathOf(request)];
    const tooLarge = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE';
    if (!tooLarge && (error.statusCode ?? 500) >= 500) logUnexpected(request, error);
    const failure = tooLarge ? new HipkiRequestError(RET.PARAM_ERROR, 'Request body too large') : (error instanceof CardBridgeError ? error : new HipkiRequestError(RET.PARAM_ERROR, 'Malformed request'));
    return json(reply, failureReply(func, failure, 'other'), tooLarge ? 413 : 200);
  });

  return app;
}

/** For the daemon's listener table. */
export function hipkiUrl(port = HIPKI_DEFAULT_PORT): string {
  return `http://127.0.0.1:${port}`;
}

