/**
 * cardbridge/client — the browser library for relying sites (served by the daemon at
 * /v1/client.js). One self-contained ES module: nothing is imported at run time.
 *
 *   import { connect } from 'https://127.0.0.1:39443/v1/client.js';
 *   const bridge = connect();
 *   button.onclick = async () => {
 *     const token = await bridge.authenticate(nonceFromServer); // opens cardbridge's window
 *     await fetch('/login', { method: 'POST', body: JSON.stringify({ token }) });
 *   };
 *
 * Operations that need the user (NHI data, certificates, signatures, login) open cardbridge's
 * own window SYNCHRONOUSLY when they are called — browsers only allow a popup inside the user's
 * click — then point it at the bridge's approval page if the bridge answers 202, and wait for
 * the result. So call them directly from the click handler, before any `await`.
 *
 * Before any of that, `detect()` tells the page whether cardbridge can be used from here, as
 * exactly one state (see DetectionState), with the fix in Traditional Chinese and English.
 *
 * The browser types used here are declared structurally below rather than taken from the DOM
 * lib, so this file compiles in the Node-typed repository and its .d.ts works in any project.
 * Its one import is the message catalogue next to it (/v1/messages.js on the bridge).
 */

import { HINTS, MESSAGES, SELF_TEST_URL, hintText, messageText } from './messages.js';
import type { DetectionState, Message } from './messages.js';

export { HINTS, MESSAGES, SELF_TEST_URL, hintText, messageText, type DetectionState, type Message };

// ---------------------------------------------------------------------------------------------
// Errors

/** The native API's error vocabulary (docs/api.md), plus two that only the client raises. */
export type CardBridgeErrorCode =
  | 'InvalidInput'
  | 'PinLength'
  | 'NotAllowedOrigin'
  | 'PinIncorrect'
  | 'NoReader'
  | 'NoCard'
  | 'WrongCard'
  | 'UnsupportedCard'
  | 'CardRemoved'
  | 'Cancelled'
  | 'PinBlocked'
  | 'RateLimited'
  | 'CardError'
  | 'ProtocolError'
  | 'TransportError'
  | 'SamUnavailable'
  | 'SamError'
  | 'Busy'
  | 'SharingViolation'
  | 'NoService'
  | 'Unavailable'
  | 'Timeout'
  /** Client only: the bridge could not be reached (not installed or not running). */
  | 'NotRunning'
  /** Client only: the bridge runs but this browser does not trust its certificate. */
  | 'CertificateUntrusted'
  /** Client only: the bridge runs but refuses this site. */
  | 'SiteNotAllowed'
  /** Client only: the browser's Local Network Access permission blocks the bridge. */
  | 'BlockedByBrowser'
  /** Client only: the browser refused to open cardbridge's window. */
  | 'PopupBlocked';

export interface CardBridgeClientErrorInit {
  code: CardBridgeErrorCode;
  /** HTTP status of the answer; 0 when there was none. */
  status: number;
  detail: string;
  triesLeft?: number;
  hint?: string;
  /** Seconds, from `Retry-After` (RateLimited). */
  retryAfter?: number;
}

export class CardBridgeClientError extends Error {
  readonly code: CardBridgeErrorCode;
  readonly status: number;
  readonly detail: string;
  readonly triesLeft?: number;
  readonly hint?: string;
  readonly retryAfter?: number;
  /** The catalogue's words for `code`: Traditional Chinese, then English in brackets. */
  readonly text: string;

  constructor(init: CardBridgeClientErrorInit) {
    super(`${init.code}: ${init.detail}`);
    this.name = 'CardBridgeClientError';
    this.code = init.code;
    this.status = init.status;
    this.detail = init.detail;
    this.text = messageText(init.code) ?? init.detail;
    if (init.triesLeft !== undefined) this.triesLeft = init.triesLeft;
    if (init.hint !== undefined) this.hint = init.hint;
    if (init.retryAfter !== undefined) this.retryAfter = init.retryAfter;
  }
}

export const NOT_RUNNING_HINT = hintText('NotRunning')!;

// ---------------------------------------------------------------------------------------------
// Detection: is cardbridge usable from this page? Image probes need no CORS, so every state can
// be told even when nothing else may be read:
//   plain <img> of https://127.0.0.1:39443/v1/probe.gif loads  → running, trusted, not blocked
//   the same with crossorigin loads                             → and this site is allowed
//   https fails, http://127.0.0.1:61161/v1/probe.gif loads      → running, certificate untrusted
//   the permission "loopback-network"/"local-network-access" is denied (or its prompt is left
//   unanswered)                                                 → blocked by the browser

export interface Detection {
  state: DetectionState;
  /** Traditional Chinese, then English. */
  message: string;
  /** What to do, in both languages; absent when ready. */
  hint?: string;
}

export type ImageOutcome = 'load' | 'error' | 'timeout';
export type PermissionStateLike = 'granted' | 'denied' | 'prompt' | undefined;

export interface DetectOptions {
  /** The bridge; default https://127.0.0.1:39443. */
  base?: string;
  /** cardbridge's plain-http listeners, to tell "not running" from "certificate not trusted"; default the HiPKI listener. */
  httpProbes?: string[];
  /** How long one image may take; default 8 s (a Local Network Access prompt holds it). */
  timeoutMs?: number;
  /** This page's origin, for the hint; default location.origin. */
  origin?: string;
  /** Injectable for tests; default an Image element. */
  loadImage?: (url: string, cors: boolean) => Promise<ImageOutcome>;
  /** Injectable for tests; default navigator.permissions. */
  permissionState?: () => Promise<PermissionStateLike>;
}

export const DEFAULT_HTTP_PROBES = ['http://127.0.0.1:61161'];

interface ImageLike {
  crossOrigin: string | null;
  onload: (() => void) | null;
  onerror: (() => void) | null;
  src: string;
}

function browserLoadImage(timeoutMs: number): (url: string, cors: boolean) => Promise<ImageOutcome> {
  return (url, cors) =>
    new Promise((resolve) => {
      const ImageCtor = globalValue<new () => ImageLike>('Image');
      if (!ImageCtor) return resolve('error');
      const img = new ImageCtor();
      const st = globalValue<(cb: () => void, ms: number) => unknown>('setTimeout')!;
      const timer = st(() => resolve('timeout'), timeoutMs);
      const done = (outcome: ImageOutcome) => {
        globalValue<(h: unknown) => void>('clearTimeout')?.(timer);
        resolve(outcome);
      };
      if (cors) img.crossOrigin = 'anonymous';
      img.onload = () => done('load');
      img.onerror = () => done('error');
      img.src = url;
    });
}

async function browserPermissionState(): Promise<PermissionStateLike> {
  const permissions = globalValue<{ permissions?: { query(d: { name: string }): Promise<{ state: string }> } }>('navigator')?.permissions;
  if (!permissions) return undefined;
  // Chrome 142–145 call it local-network-access; 146+ split it, loopback-network covers 127.0.0.1.
  for (const name of ['loopback-network', 'local-network-access']) {
    try {
      const { state } = await permissions.query({ name });
      if (state === 'granted' || state === 'denied' || state === 'prompt') return state;
    } catch {
      // a browser without this permission
    }
  }
  return undefined;
}

function detection(state: DetectionState, origin: string | undefined): Detection {
  const result: Detection = { state, message: messageText(state)! };
  const hint = hintText(state, origin);
  if (hint !== undefined && state !== 'Ready') result.hint = hint;
  return result;
}

/** Whether cardbridge can be used from this page: exactly one state, never an exception. */
export async function detect(options: DetectOptions = {}): Promise<Detection> {
  const base = new URL(options.base ?? DEFAULT_BASE).origin;
  const origin = options.origin ?? globalValue<{ origin?: string }>('location')?.origin;
  const load = options.loadImage ?? browserLoadImage(options.timeoutMs ?? 8000);
  const permission = options.permissionState ?? browserPermissionState;
  const stamp = () => `?_=${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const answer = (state: DetectionState) => detection(state, origin);

  if ((await permission()) === 'denied') return answer('BlockedByBrowser');
  const secure = await load(`${base}/v1/probe.gif${stamp()}`, false);
  if (secure === 'load') return answer((await load(`${base}/v1/probe.gif${stamp()}`, true)) === 'load' ? 'Ready' : 'SiteNotAllowed');
  const after = await permission();
  if (after === 'denied' || (secure === 'timeout' && after === 'prompt')) return answer('BlockedByBrowser');
  for (const http of options.httpProbes ?? DEFAULT_HTTP_PROBES) {
    if ((await load(`${new URL(http).origin}/v1/probe.gif${stamp()}`, false)) === 'load') return answer('CertificateUntrusted');
  }
  return answer('NotRunning');
}

// ---------------------------------------------------------------------------------------------
// The results (docs/api.md)

export interface CardSummary {
  kind: string;
  generation?: number;
  /** The card's name for people, e.g. "health insurance card (健保卡)". */
  label?: string;
}

export interface BridgeStatus {
  version: string;
  api: 'v1';
  serviceAvailable: boolean;
  readers: Array<{ name: string; cardPresent: boolean; card: CardSummary | null }>;
}

export interface ReaderInfo {
  name: string;
  cardPresent: boolean;
  atr?: string | null;
  card: CardSummary | null;
}

/** `snapshot`, `reader-added`, `reader-removed`, `card-inserted`, `card-removed`, `service-lost`, `service-restored`. */
export interface BridgeEvent {
  type: string;
  [field: string]: unknown;
}

export interface NhiBasicData {
  cardNumber: string;
  name: string;
  nameComplete: boolean;
  idNumber: string;
  birthDate: string;
  birthDateRoc: string;
  sex: string;
  issueDate: string;
  issueDateRoc: string;
}

export interface NhiHSignResult {
  random: string;
  /** Base64, 256 bytes. */
  signature: string;
}

export interface MoicaCertificateInfo {
  role: string;
  /** Base64 DER. */
  certificate: string;
  holder: string;
  idLast4: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

/**
 * The login token (docs/api.md). Declared here, not imported, so this module's types stand
 * alone in a browser project; test/unit/client checks it matches src/verify/token-format.ts.
 */
export interface AuthToken {
  format: 'cardbridge-auth-token';
  version: 1;
  algorithm: 'RS256';
  /** Base64 DER of the signing certificate. */
  certificate: string;
  /** Base64 RSASSA-PKCS1-v1_5 SHA-256 signature over SHA256(origin) ‖ SHA256(nonce). */
  signature: string;
}

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** Which card an operation uses. */
export interface CardChoice {
  /**
   * A reader by name (as `readers()` lists it): only the card in that reader is used, and
   * cardbridge's window names it. Default: the first reader holding a card of the right kind.
   */
  reader?: string;
}

export interface SignOptions extends CardChoice {
  /** The data to sign: bytes, or text (signed as UTF-8). Give this or `digest`. */
  data?: Uint8Array | ArrayBuffer | string;
  /** A digest under `hash`, computed by the page. */
  digest?: Uint8Array | ArrayBuffer;
  /** Default sha256. */
  hash?: HashName;
  /** Default pkcs1. */
  format?: 'pkcs1' | 'cms';
  /** cms only: leave the content out. */
  detached?: boolean;
}

export interface SignResult {
  format: 'pkcs1' | 'cms';
  hash: HashName;
  /** Base64: the PKCS#1 signature, or the DER CMS ContentInfo. */
  signature: string;
  /** Base64 DER of the signing certificate. */
  certificate: string;
}

// ---------------------------------------------------------------------------------------------
// What the library needs from the browser (injectable for tests)

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponseLike>;

export interface WebSocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export interface PopupWindowLike {
  readonly closed: boolean;
  close(): void;
  focus?(): void;
  location: { href: string; replace?(url: string): void };
}

export type OpenWindow = (url: string, target: string, features: string) => PopupWindowLike | null;

export interface TimersLike {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ConnectOptions {
  /** The bridge; default https://127.0.0.1:39443. */
  base?: string;
  fetch?: FetchLike;
  WebSocket?: WebSocketConstructorLike;
  /** Default `window.open`. */
  openWindow?: OpenWindow;
  timers?: TimersLike;
  /** Clock (ms), for the pending request's expiry. */
  now?: () => number;
  /** Seconds each long poll may wait (the `wait` parameter); default 25. */
  waitSeconds?: number;
  /** How often to look whether the user closed cardbridge's window; default 250 ms. */
  popupPollMs?: number;
  /** Events WebSocket reconnection backoff; default 500 ms doubling to 30 s. */
  reconnect?: { initialMs?: number; maxMs?: number };
}

export interface EventsOptions {
  /** Told when the events connection opens (true) or drops (false); it reconnects by itself. */
  onConnectionChange?(connected: boolean): void;
}

export const DEFAULT_BASE = 'https://127.0.0.1:39443';
export const POPUP_NAME = 'cardbridge';
export const POPUP_FEATURES = 'popup,width=480,height=640';

// ---------------------------------------------------------------------------------------------
// Helpers

interface Answer {
  status: number;
  body: unknown;
}

interface PendingRequest {
  id: string;
  state: 'pending';
  approveUrl: string;
  expiresAt?: string;
}

interface RequestState {
  id: string;
  state: 'pending' | 'done' | 'failed';
  result?: unknown;
  problem?: unknown;
}

/** How long after `expiresAt` the client keeps waiting for the bridge to say so itself. */
const EXPIRY_GRACE_MS = 30_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function protocolError(status: number, detail: string): CardBridgeClientError {
  return new CardBridgeClientError({ code: 'ProtocolError', status, detail });
}

function invalidInput(detail: string): CardBridgeClientError {
  return new CardBridgeClientError({ code: 'InvalidInput', status: 0, detail });
}

/** RFC 9457 problem JSON → typed error. */
function errorFromProblem(problem: unknown, httpStatus: number, retryAfter?: number): CardBridgeClientError {
  if (!isRecord(problem) || typeof problem.code !== 'string') {
    return protocolError(httpStatus, `The bridge answered HTTP ${httpStatus} without a problem description`);
  }
  const init: CardBridgeClientErrorInit = {
    code: problem.code as CardBridgeErrorCode,
    status: typeof problem.status === 'number' ? problem.status : httpStatus,
    detail: typeof problem.detail === 'string' ? problem.detail : typeof problem.title === 'string' ? problem.title : problem.code,
  };
  if (typeof problem.triesLeft === 'number') init.triesLeft = problem.triesLeft;
  if (typeof problem.hint === 'string') init.hint = problem.hint;
  else {
    const hint = hintText(problem.code, globalValue<{ origin?: string }>('location')?.origin);
    if (hint !== undefined) init.hint = hint;
  }
  if (retryAfter !== undefined) init.retryAfter = retryAfter;
  return new CardBridgeClientError(init);
}

function toBytes(value: Uint8Array | ArrayBuffer | string, what: 'data' | 'digest'): Uint8Array {
  if (typeof value === 'string' && what === 'data') return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw invalidInput(`${what} must be bytes (Uint8Array, ArrayBuffer)${what === 'data' ? ' or text' : ''}`);
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function globalValue<T>(name: string): T | undefined {
  return (globalThis as Record<string, unknown>)[name] as T | undefined;
}

function closeQuietly(popup: PopupWindowLike | null | undefined): void {
  try {
    if (popup && !popup.closed) popup.close();
  } catch {
    // a window we can no longer reach
  }
}

function navigate(popup: PopupWindowLike, url: string): void {
  if (typeof popup.location.replace === 'function') popup.location.replace(url);
  else popup.location.href = url;
  popup.focus?.();
}

function isAbort(error: unknown): boolean {
  return isRecord(error) && (error as { name?: unknown }).name === 'AbortError';
}

// ---------------------------------------------------------------------------------------------

export class CardBridge {
  readonly base: string;
  readonly #origin: string;
  readonly #fetch: FetchLike;
  readonly #WebSocket: WebSocketConstructorLike | undefined;
  readonly #openWindow: OpenWindow;
  readonly #timers: TimersLike;
  readonly #now: () => number;
  readonly #waitSeconds: number;
  readonly #popupPollMs: number;
  readonly #reconnect: { initialMs: number; maxMs: number };

  constructor(options: ConnectOptions = {}) {
    let url: URL;
    try {
      url = new URL(options.base ?? DEFAULT_BASE);
    } catch {
      throw invalidInput(`base must be an absolute URL such as ${DEFAULT_BASE}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidInput('base must be an https URL');
    this.#origin = url.origin;
    this.base = url.origin;
    // Called through a wrapper: the browser's fetch/open must not be called with `this` = us.
    const fetchImpl = options.fetch ?? globalValue<FetchLike>('fetch');
    this.#fetch = (u, init) => {
      if (!fetchImpl) return Promise.reject(new TypeError('fetch is not available'));
      return fetchImpl(u, init);
    };
    this.#WebSocket = options.WebSocket ?? globalValue<WebSocketConstructorLike>('WebSocket');
    const openImpl = options.openWindow;
    this.#openWindow =
      openImpl ??
      ((u, target, features) => {
        const w = globalValue<{ open?: OpenWindow }>('window');
        return typeof w?.open === 'function' ? w.open(u, target, features) : null;
      });
    const st = globalValue<TimersLike['setTimeout']>('setTimeout');
    const ct = globalValue<TimersLike['clearTimeout']>('clearTimeout');
    this.#timers = options.timers ?? { setTimeout: (cb, ms) => st!(cb, ms), clearTimeout: (h) => ct!(h) };
    this.#now = options.now ?? (() => Date.now());
    this.#waitSeconds = options.waitSeconds ?? 25;
    this.#popupPollMs = options.popupPollMs ?? 250;
    this.#reconnect = { initialMs: options.reconnect?.initialMs ?? 500, maxMs: options.reconnect?.maxMs ?? 30_000 };
  }

  // ----- routes without the user -----

  /** See the function detect(): whether this page can use the bridge, as one state. */
  detect(options: Omit<DetectOptions, 'base'> = {}): Promise<Detection> {
    return detect({ ...options, base: this.#origin });
  }

  async status(): Promise<BridgeStatus> {
    return (await this.#call('GET', '/v1/status')).body as BridgeStatus;
  }

  async readers(): Promise<ReaderInfo[]> {
    const { body } = await this.#call('GET', '/v1/readers');
    if (!isRecord(body) || !Array.isArray(body.readers)) throw protocolError(200, 'GET /v1/readers: no readers array');
    return body.readers as ReaderInfo[];
  }

  /**
   * Subscribes to reader and card events (first a `snapshot`). The connection comes back by
   * itself with backoff after the bridge restarts; each reconnection starts with a new snapshot.
   * Returns the unsubscribe function.
   */
  events(onEvent: (event: BridgeEvent) => void, options: EventsOptions = {}): () => void {
    const Ws = this.#WebSocket;
    if (!Ws) throw new CardBridgeClientError({ code: 'Unavailable', status: 0, detail: 'WebSocket is not available here' });
    const url = new URL('/v1/events', this.#origin);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let stopped = false;
    let socket: WebSocketLike | undefined;
    let timer: unknown;
    let attempt = 0;

    const schedule = () => {
      if (stopped) return;
      const delay = Math.min(this.#reconnect.maxMs, this.#reconnect.initialMs * 2 ** attempt);
      attempt++;
      timer = this.#timers.setTimeout(open, delay);
    };
    const open = () => {
      timer = undefined;
      if (stopped) return;
      let ws: WebSocketLike;
      try {
        ws = new Ws(url.href);
      } catch {
        schedule();
        return;
      }
      socket = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        attempt = 0;
        options.onConnectionChange?.(true);
      };
      ws.onmessage = (message) => {
        let event: unknown;
        try {
          event = JSON.parse(String(message.data));
        } catch {
          return;
        }
        if (isRecord(event) && typeof event.type === 'string') onEvent(event as BridgeEvent);
      };
      ws.onerror = () => {
        // a close event follows
      };
      ws.onclose = () => {
        if (socket !== ws) return;
        socket = undefined;
        if (opened) options.onConnectionChange?.(false);
        schedule();
      };
    };
    open();
    return () => {
      stopped = true;
      if (timer !== undefined) this.#timers.clearTimeout(timer);
      const ws = socket;
      socket = undefined;
      try {
        ws?.close(1000, 'unsubscribed');
      } catch {
        // already closed
      }
    };
  }

  // ----- routes that need the user: call these synchronously inside a click handler -----

  readNhi(options: CardChoice = {}): Promise<NhiBasicData> {
    let choice: CardChoice;
    try {
      choice = cardChoice(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#withUser<NhiBasicData>('POST', '/v1/nhi/basic', { ...choice });
  }

  /** NHI H_Sign; `random` is `0001` + 16 digits, made by cardbridge when absent. */
  nhiHSign(random?: string, options: CardChoice = {}): Promise<NhiHSignResult> {
    let choice: CardChoice;
    try {
      choice = cardChoice(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#withUser<NhiHSignResult>('POST', '/v1/nhi/hsign', { ...(random === undefined ? {} : { random }), ...choice });
  }

  async moicaCertificates(options: CardChoice = {}): Promise<MoicaCertificateInfo[]> {
    const { reader } = cardChoice(options);
    const query = reader === undefined ? '' : `?reader=${encodeURIComponent(reader)}`;
    const result = await this.#withUser<{ certificates?: unknown }>('GET', `/v1/moica/certificates${query}`);
    if (!isRecord(result) || !Array.isArray(result.certificates)) throw protocolError(200, 'no certificates array in the result');
    return result.certificates as MoicaCertificateInfo[];
  }

  sign(options: SignOptions): Promise<SignResult> {
    let body: Record<string, unknown>;
    try {
      body = signBody(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#withUser<SignResult>('POST', '/v1/moica/sign', body);
  }

  /** The login token for `nonce` (from the site's back end; 32–128 characters), bound to this page's origin. */
  async authenticate(nonce: string, options: CardChoice = {}): Promise<AuthToken> {
    if (typeof nonce !== 'string' || nonce.length < 32 || nonce.length > 128) {
      throw invalidInput('nonce must be a string of 32–128 characters issued by your back end');
    }
    const result = await this.#withUser<{ token?: unknown }>('POST', '/v1/moica/authenticate', { nonce, ...cardChoice(options) });
    if (!isRecord(result) || !isRecord(result.token)) throw protocolError(200, 'no token in the result');
    return result.token as unknown as AuthToken;
  }

  // ----- the pending-request flow -----

  /**
   * Opens the (blank) popup NOW, synchronously — this is what keeps it inside the user's click —
   * and then runs the request; the popup is pointed at `approveUrl` on 202 and closed at the end.
   */
  #withUser<T>(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<T> {
    const popup = this.#open('about:blank');
    return this.#runWithUser<T>(popup, method, path, body);
  }

  /** The bridge's own pages: this base, or the same listener under another loopback name. */
  #isBridgeUrl(url: URL): boolean {
    if (url.origin === this.#origin) return true;
    const base = new URL(this.#origin);
    const loopback = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
    return url.protocol === base.protocol && url.port === base.port && loopback(url.hostname) && loopback(base.hostname);
  }

  #open(url: string): PopupWindowLike | null {
    try {
      return this.#openWindow(url, POPUP_NAME, POPUP_FEATURES);
    } catch {
      return null;
    }
  }

  async #runWithUser<T>(popup: PopupWindowLike | null, method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<T> {
    let win: PopupWindowLike | null = popup;
    let windowExplains = false;
    try {
      const first = await this.#call(method, path, body);
      if (first.status !== 202) return first.body as T;
      const pending = asPending(first.body);
      const approveUrl = new URL(pending.approveUrl, this.#origin);
      if (!this.#isBridgeUrl(approveUrl)) {
        await this.#cancel(pending.id);
        throw protocolError(202, 'approveUrl is not on the bridge');
      }
      if (win && win.closed) {
        // the user closed the window before the bridge answered
        await this.#cancel(pending.id);
        throw cancelled();
      }
      if (win) navigate(win, approveUrl.href);
      else win = this.#open(approveUrl.href); // a second chance, e.g. still within the click's activation
      if (!win) {
        await this.#cancel(pending.id);
        throw new CardBridgeClientError({
          code: 'PopupBlocked',
          status: 0,
          detail: "The browser blocked cardbridge's window",
          hint: 'Start this operation from a click on the page, or allow popups for this site.',
        });
      }
      try {
        return await this.#follow<T>(pending, win);
      } catch (e) {
        // A failure the citizen must read (a blocked card, a removed card) stays on screen in
        // cardbridge's window until they close it; a cancellation has nothing to explain.
        windowExplains = e instanceof CardBridgeClientError && e.code !== 'Cancelled' && e.code !== 'Timeout' && !win.closed;
        throw e;
      }
    } finally {
      if (!windowExplains) closeQuietly(win);
      if (popup !== win) closeQuietly(popup);
    }
  }

  /** Long-polls the pending request while watching the window; closing it cancels. */
  async #follow<T>(pending: PendingRequest, popup: PopupWindowLike): Promise<T> {
    const path = `/v1/requests/${encodeURIComponent(pending.id)}`;
    const expiresAt = pending.expiresAt === undefined ? NaN : Date.parse(pending.expiresAt);
    let watchTimer: unknown;
    let stopWatching = false;
    const closed = new Promise<'closed'>((resolve) => {
      const look = () => {
        watchTimer = undefined;
        if (stopWatching) return;
        let isClosed = false;
        try {
          isClosed = popup.closed;
        } catch {
          isClosed = false;
        }
        if (isClosed) resolve('closed');
        else watchTimer = this.#timers.setTimeout(look, this.#popupPollMs);
      };
      watchTimer = this.#timers.setTimeout(look, this.#popupPollMs);
    });
    // Once the user has closed the window while the card was already working, the result is
    // still coming: keep polling without the window.
    let watching = true;
    try {
      for (;;) {
        const abort = typeof AbortController === 'function' ? new AbortController() : undefined;
        const poll = this.#call('GET', `${path}?wait=${this.#waitSeconds}`, undefined, abort?.signal);
        poll.catch(() => undefined); // may be abandoned below
        const next = watching ? await Promise.race([poll, closed]) : await poll;
        if (next === 'closed') {
          abort?.abort();
          // DELETE answers the request's state after the attempt: failed (Cancelled) when it was
          // still waiting for the user; done/failed when it had settled (the approval page
          // closes itself then); pending when the user had answered and the card is working.
          const after = await this.#cancel(pending.id);
          const state = isRecord(after) ? after.state : undefined;
          if (state === 'done' || state === 'failed') return settle<T>(asState(after));
          if (state === 'pending') {
            watching = false;
            continue;
          }
          throw cancelled();
        }
        const state = asState(next.body);
        if (state.state !== 'pending') return settle<T>(state);
        if (Number.isFinite(expiresAt) && this.#now() > expiresAt + EXPIRY_GRACE_MS) {
          await this.#cancel(pending.id);
          throw new CardBridgeClientError({ code: 'Timeout', status: 504, detail: 'The request expired before the user answered' });
        }
      }
    } finally {
      stopWatching = true;
      if (watchTimer !== undefined) this.#timers.clearTimeout(watchTimer);
    }
  }

  /** DELETE; returns the answer's body (the request's state), undefined when there is none. */
  async #cancel(id: string): Promise<unknown> {
    try {
      return (await this.#call('DELETE', `/v1/requests/${encodeURIComponent(id)}`)).body;
    } catch {
      return undefined; // best effort: the request expires on its own
    }
  }

  /**
   * A request that got no answer at all: in a browser, the probes say why (not running,
   * certificate, site, browser permission); elsewhere it is NotRunning.
   */
  async #unreachable(): Promise<CardBridgeClientError> {
    const detail = `Cannot reach cardbridge at ${this.#origin}`;
    if (!globalValue('Image')) return new CardBridgeClientError({ code: 'NotRunning', status: 0, detail, hint: NOT_RUNNING_HINT });
    const found = await this.detect().catch(() => undefined);
    const code: CardBridgeErrorCode = found && found.state !== 'Ready' ? found.state : 'NotRunning';
    const hint = found?.hint ?? NOT_RUNNING_HINT;
    return new CardBridgeClientError({ code, status: 0, detail, hint });
  }

  async #call(method: string, path: string, body?: Record<string, unknown>, signal?: AbortSignal): Promise<Answer> {
    const init: FetchInit = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    let response: FetchResponseLike;
    try {
      response = await this.#fetch(this.#origin + path, init);
    } catch (e) {
      if (isAbort(e) || signal?.aborted) throw e;
      throw await this.#unreachable();
    }
    let text: string;
    try {
      text = await response.text();
    } catch (e) {
      if (isAbort(e) || signal?.aborted) throw e;
      throw new CardBridgeClientError({ code: 'NotRunning', status: 0, detail: 'The connection to cardbridge broke', hint: NOT_RUNNING_HINT });
    }
    let json: unknown;
    let parsed = true;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = false;
    }
    const status = response.status;
    if (status >= 200 && status < 300) {
      if (!parsed || (json === undefined && status !== 204)) throw protocolError(status, `${method} ${path}: the answer is not JSON`);
      return { status, body: json };
    }
    const retryAfterHeader = response.headers.get('Retry-After');
    const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
    throw errorFromProblem(json, status, retryAfter);
  }
}

function cancelled(): CardBridgeClientError {
  return new CardBridgeClientError({ code: 'Cancelled', status: 409, detail: "The cardbridge window was closed" });
}

function asPending(body: unknown): PendingRequest {
  if (!isRecord(body) || typeof body.id !== 'string' || body.id === '' || typeof body.approveUrl !== 'string') {
    throw protocolError(202, 'A 202 answer without id and approveUrl');
  }
  const pending: PendingRequest = { id: body.id, state: 'pending', approveUrl: body.approveUrl };
  if (typeof body.expiresAt === 'string') pending.expiresAt = body.expiresAt;
  return pending;
}

function asState(body: unknown): RequestState {
  if (!isRecord(body) || (body.state !== 'pending' && body.state !== 'done' && body.state !== 'failed')) {
    throw protocolError(200, 'A request state without a known state');
  }
  return body as unknown as RequestState;
}

function settle<T>(state: RequestState): T {
  if (state.state === 'done') return state.result as T;
  const problem = state.problem;
  throw errorFromProblem(problem, isRecord(problem) && typeof problem.status === 'number' ? problem.status : 500);
}

/** `{ reader }` when one is named, `{}` otherwise; InvalidInput for anything but a reader name. */
function cardChoice(options: CardChoice): CardChoice {
  const reader = (options as CardChoice | null | undefined)?.reader;
  if (reader === undefined) return {};
  if (typeof reader !== 'string' || reader === '' || reader.length > 200) throw invalidInput('reader must be a reader name as readers() lists it');
  return { reader };
}

function signBody(options: SignOptions): Record<string, unknown> {
  if (typeof options !== 'object' || options === null) throw invalidInput('sign() takes { data | digest, hash, format, detached }');
  const { data, digest, hash, format, detached } = options;
  if ((data === undefined) === (digest === undefined)) throw invalidInput('Give data or digest (exactly one)');
  const body: Record<string, unknown> = { hash: hash ?? 'sha256', format: format ?? 'pkcs1', ...cardChoice(options) };
  if (data !== undefined) body.data = toBase64(toBytes(data, 'data'));
  else body.digest = toBase64(toBytes(digest!, 'digest'));
  if (detached !== undefined) body.detached = detached;
  return body;
}

/** A bridge client; no network traffic until a method is called. */
export function connect(options: ConnectOptions = {}): CardBridge {
  return new CardBridge(options);
}
