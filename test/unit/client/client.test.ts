import type { AuthToken as VerifyAuthToken } from '../../../src/verify/token-format.js';
import {
  type AuthToken,
  CardBridgeClientError,
  type FetchInit,
  type FetchResponseLike,
  type PopupWindowLike,
  type TimersLike,
  type WebSocketLike,
  connect,
  detect,
} from '../../../src/client/index.js';

// The client declares the token type itself (no run-time import); it must be the verify one.
const toVerify = (t: AuthToken): VerifyAuthToken => t;
const fromVerify = (t: VerifyAuthToken): AuthToken => t;
void toVerify;
void fromVerify;

const BASE = 'https://127.0.0.1:39443';
const NONCE = 'Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6';
const TOKEN: AuthToken = { format: 'cardbridge-auth-token', version: 1, algorithm: 'RS256', certificate: 'MIIB', signature: 'AAAA' };

interface Call {
  method: string;
  url: string;
  body?: unknown;
  signal?: AbortSignal;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'network-error' | 'hang';

/** A fake bridge: `reply` decides each answer; every call is logged. */
function fakeFetch(reply: (call: Call, index: number) => Reply) {
  const calls: Call[] = [];
  const log: string[] = [];
  const fetch = (url: string, init: FetchInit): Promise<FetchResponseLike> => {
    const call: Call = { method: init.method, url, ...(init.body ? { body: JSON.parse(init.body) } : {}), ...(init.signal ? { signal: init.signal } : {}) };
    calls.push(call);
    log.push(`fetch ${init.method} ${url.slice(BASE.length)}`);
    const r = reply(call, calls.length - 1);
    if (r === 'network-error') return Promise.reject(new TypeError('Failed to fetch'));
    if (r === 'hang') {
      return new Promise((_, reject) => {
        init.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
      });
    }
    const headers = new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    return Promise.resolve({
      status: r.status,
      headers: { get: (name: string) => headers.get(name.toLowerCase()) ?? null },
      text: async () => (r.body === undefined ? '' : JSON.stringify(r.body)),
    });
  };
  return { fetch, calls, log };
}

class FakePopup implements PopupWindowLike {
  closed = false;
  readonly urls: string[] = [];
  location = {
    href: 'about:blank',
    replace: (url: string) => {
      this.location.href = url;
      this.urls.push(url);
    },
  };
  close(): void {
    this.closed = true;
  }
  focus(): void {}
}

/** Real timers, shortened, with the delays asked for recorded. */
function fastTimers(): { timers: TimersLike; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    timers: {
      setTimeout: (cb, ms) => {
        delays.push(ms);
        return setTimeout(cb, Math.min(ms, 2));
      },
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    },
  };
}

function setup(reply: (call: Call, index: number) => Reply, popups: Array<FakePopup | null> = [new FakePopup()]) {
  const f = fakeFetch(reply);
  const opened: Array<{ url: string; target: string; features: string }> = [];
  const queue = [...popups];
  const { timers, delays } = fastTimers();
  const bridge = connect({
    fetch: f.fetch,
    timers,
    openWindow: (url, target, features) => {
      opened.push({ url, target, features });
      f.log.push(`open ${url}`);
      return queue.length > 0 ? queue.shift()! : null;
    },
  });
  return { bridge, ...f, opened, delays, popup: popups[0] ?? null };
}

async function rejection(promise: Promise<unknown>): Promise<CardBridgeClientError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(CardBridgeClientError);
    return e as CardBridgeClientError;
  }
  throw new Error('expected a rejection');
}

const PENDING = { id: 'r-1', state: 'pending', approveUrl: '/approve/r-1', expiresAt: new Date(Date.now() + 120_000).toISOString() };

describe('client: every card operation takes the reader to use', () => {
  const answers: Record<string, unknown> = {
    '/v1/nhi/basic': { name: 'x' },
    '/v1/nhi/hsign': { random: '0001', signature: 'AAAA' },
    '/v1/moica/certificates': { certificates: [] },
    '/v1/moica/sign': { format: 'pkcs1', hash: 'sha256', signature: 'AAAA', certificate: 'MIIB' },
    '/v1/moica/authenticate': { token: TOKEN },
  };
  const answering = () => setup((call) => ({ status: 200, body: answers[new URL(call.url).pathname] }), [new FakePopup(), new FakePopup(), new FakePopup(), new FakePopup(), new FakePopup()]);

  it('sends `reader` in the body (the query for certificates), and nothing when it is not given', async () => {
    const s = answering();
    await s.bridge.readNhi({ reader: 'R 2' });
    await s.bridge.nhiHSign('00011234567890123456', { reader: 'R 2' });
    await s.bridge.moicaCertificates({ reader: 'R 2' });
    await s.bridge.sign({ data: 'x', reader: 'R 2' });
    await s.bridge.authenticate(NONCE, { reader: 'R 2' });
    expect(s.calls.map((c) => [c.url.slice(BASE.length), c.body === undefined ? undefined : (c.body as Record<string, unknown>).reader])).toEqual([
      ['/v1/nhi/basic', 'R 2'],
      ['/v1/nhi/hsign', 'R 2'],
      ['/v1/moica/certificates?reader=R%202', undefined],
      ['/v1/moica/sign', 'R 2'],
      ['/v1/moica/authenticate', 'R 2'],
    ]);
    const plain = answering();
    await plain.bridge.nhiHSign();
    await plain.bridge.moicaCertificates();
    await plain.bridge.sign({ data: 'x' });
    await plain.bridge.authenticate(NONCE);
    expect(plain.calls.map((c) => [c.url.slice(BASE.length), c.body === undefined ? undefined : 'reader' in (c.body as object)])).toEqual([
      ['/v1/nhi/hsign', false],
      ['/v1/moica/certificates', undefined],
      ['/v1/moica/sign', false],
      ['/v1/moica/authenticate', false],
    ]);
  });

  it('refuses a reader that is not a non-empty string before calling cardbridge', async () => {
    const s = answering();
    for (const reader of ['', 5, null]) {
      const options = { reader } as unknown as { reader: string };
      expect(await rejection(s.bridge.readNhi(options))).toMatchObject({ code: 'InvalidInput' });
      expect(await rejection(s.bridge.moicaCertificates(options))).toMatchObject({ code: 'InvalidInput' });
      expect(await rejection(s.bridge.sign({ data: 'x', ...options }))).toMatchObject({ code: 'InvalidInput' });
      expect(await rejection(s.bridge.authenticate(NONCE, options))).toMatchObject({ code: 'InvalidInput' });
      expect(await rejection(s.bridge.nhiHSign(undefined, options))).toMatchObject({ code: 'InvalidInput' });
    }
    expect(s.calls).toEqual([]);
  });
});

describe('client: operations that need the user', () => {
  it('opens the popup synchronously, before anything is awaited', () => {
    const { bridge, opened, log } = setup(() => 'hang');
    const promise = bridge.authenticate(NONCE);
    // nothing awaited yet, and the popup is already there
    expect(opened).toEqual([{ url: 'about:blank', target: 'cardbridge', features: 'popup,width=480,height=640' }]);
    expect(log[0]).toBe('open about:blank');
    promise.catch(() => undefined);
  });

  it('200: returns the result and closes the blank popup', async () => {
    const result = { format: 'pkcs1', hash: 'sha256', signature: 'c2ln', certificate: 'Y2VydA==' };
    const { bridge, calls, popup } = setup(() => ({ status: 200, body: result }));
    await expect(bridge.sign({ data: 'hello', format: 'pkcs1' })).resolves.toEqual(result);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'POST', url: `${BASE}/v1/moica/sign`, body: { data: 'aGVsbG8=', hash: 'sha256', format: 'pkcs1' } });
    expect(popup!.closed).toBe(true);
    expect(popup!.urls).toEqual([]);
  });

  it('202: navigates the popup to approveUrl, long-polls until done, closes the popup', async () => {
    const { bridge, calls, popup, delays } = setup((call, i) => {
      if (i === 0) return { status: 202, body: PENDING };
      if (call.method === 'GET' && i === 1) return { status: 200, body: { id: 'r-1', state: 'pending' } };
      return { status: 200, body: { id: 'r-1', state: 'done', result: { token: TOKEN } } };
    });
    await expect(bridge.authenticate(NONCE)).resolves.toEqual(TOKEN);
    expect(calls[0]).toMatchObject({ method: 'POST', url: `${BASE}/v1/moica/authenticate`, body: { nonce: NONCE } });
    expect(popup!.urls).toEqual([`${BASE}/approve/r-1`]);
    expect(calls.slice(1).map((c) => `${c.method} ${c.url.slice(BASE.length)}`)).toEqual([
      'GET /v1/requests/r-1?wait=25',
      'GET /v1/requests/r-1?wait=25',
    ]);
    expect(popup!.closed).toBe(true);
    expect(delays).toContain(250); // the popup is watched every 250 ms
  });

  it('202 then a failure the citizen must read (card blocked): rejects, and leaves cardbridge’s window open to explain it', async () => {
    const BLOCKED = { type: 'urn:cardbridge:problem:PinBlocked', title: 'PinBlocked', status: 409, code: 'PinBlocked', detail: 'The PIN is blocked' };
    const { bridge, popup } = setup((_call, i) => (i === 0 ? { status: 202, body: PENDING } : { status: 200, body: { id: 'r-1', state: 'failed', problem: BLOCKED } }));
    expect((await rejection(bridge.sign({ data: 'hello' }))).code).toBe('PinBlocked');
    expect(popup!.urls).toEqual([`${BASE}/approve/r-1`]);
    expect(popup!.closed).toBe(false); // the window shows why; the citizen closes it
  });

  const CANCELLED = { type: 'urn:cardbridge:problem:Cancelled', title: 'Cancelled', status: 409, code: 'Cancelled', detail: 'The request was cancelled' };

  /** The bridge: a 202, then a long poll during which the user closes the window; `onDelete` answers the DELETE. */
  function closingSetup(onDelete: Reply, afterDelete: Reply = 'hang') {
    let pollSignal: AbortSignal | undefined;
    let deleted = false;
    const s = setup((call, i) => {
      if (i === 0) return { status: 202, body: PENDING };
      if (call.method === 'DELETE') {
        deleted = true;
        return onDelete;
      }
      if (deleted) return afterDelete;
      pollSignal = call.signal;
      setTimeout(() => s.popup!.close(), 10); // the user closes the window while we wait
      return 'hang';
    });
    return { ...s, signal: () => pollSignal };
  }

  it('popup closed by the user: sends DELETE and rejects with Cancelled', async () => {
    const s = closingSetup({ status: 200, body: { id: 'r-1', state: 'failed', problem: CANCELLED } });
    const e = await rejection(s.bridge.readNhi());
    expect(e).toMatchObject({ code: 'Cancelled', status: 409 });
    expect(s.calls.map((c) => `${c.method} ${c.url.slice(BASE.length)}`)).toEqual([
      'POST /v1/nhi/basic',
      'GET /v1/requests/r-1?wait=25',
      'DELETE /v1/requests/r-1',
    ]);
    expect(s.signal()?.aborted).toBe(true); // the abandoned long poll was aborted
  });

  it('popup closed, DELETE answers without a body: still Cancelled', async () => {
    const s = closingSetup({ status: 204 });
    expect(await rejection(s.bridge.sign({ data: new Uint8Array([1, 2, 3]) }))).toMatchObject({ code: 'Cancelled', status: 409 });
    expect(s.calls.at(-1)!.method).toBe('DELETE');
  });

  it('popup closed by the approval page after the request settled: DELETE reports done, the result is returned', async () => {
    const s = closingSetup({ status: 200, body: { id: 'r-1', state: 'done', result: { random: '0001', signature: 'AAAA' } } });
    await expect(s.bridge.nhiHSign('00011234567890123456')).resolves.toEqual({ random: '0001', signature: 'AAAA' });
    expect(s.calls[0]!.body).toEqual({ random: '00011234567890123456' });
  });

  it('popup closed while the card is already working: keeps polling for the result', async () => {
    const s = closingSetup({ status: 200, body: { id: 'r-1', state: 'pending' } }, { status: 200, body: { id: 'r-1', state: 'done', result: { token: TOKEN } } });
    await expect(s.bridge.authenticate(NONCE)).resolves.toEqual(TOKEN);
    expect(s.calls.map((c) => c.method)).toEqual(['POST', 'GET', 'DELETE', 'GET']);
  });

  it('a failed request becomes a typed error with triesLeft', async () => {
    const problem = { type: 'urn:cardbridge:problem:PinIncorrect', title: 'PinIncorrect', status: 403, code: 'PinIncorrect', detail: 'VERIFY: wrong PIN, 2 tries left', triesLeft: 2 };
    const { bridge, popup } = setup((_, i) => (i === 0 ? { status: 202, body: PENDING } : { status: 200, body: { id: 'r-1', state: 'failed', problem } }));
    const e = await rejection(bridge.sign({ digest: new Uint8Array(32), hash: 'sha256', format: 'cms', detached: true }));
    expect(e).toMatchObject({ code: 'PinIncorrect', status: 403, triesLeft: 2, detail: 'VERIFY: wrong PIN, 2 tries left' });
    expect(popup!.closed).toBe(false); // cardbridge’s window shows the failure until the citizen closes it
  });

  it('a problem answer to the first call is a typed error too (hint, Retry-After)', async () => {
    const blocked = { type: 'urn:cardbridge:problem:PinBlocked', title: 'PinBlocked', status: 423, code: 'PinBlocked', detail: 'blocked', hint: 'Unblock it at the CA with your 用戶代碼' };
    let s = setup(() => ({ status: 423, body: blocked }));
    expect(await rejection(s.bridge.authenticate(NONCE))).toMatchObject({ code: 'PinBlocked', status: 423, hint: blocked.hint });
    expect(s.popup!.closed).toBe(true);

    const limited = { type: 'urn:cardbridge:problem:RateLimited', title: 'RateLimited', status: 429, code: 'RateLimited', detail: 'slow down' };
    s = setup(() => ({ status: 429, body: limited, headers: { 'Retry-After': '3' } }));
    expect(await rejection(s.bridge.moicaCertificates())).toMatchObject({ code: 'RateLimited', status: 429, retryAfter: 3 });

    s = setup(() => ({ status: 500, body: 'oops' }));
    expect(await rejection(s.bridge.moicaCertificates())).toMatchObject({ code: 'ProtocolError', status: 500 });
  });

  it('bridge down: NotRunning with a hint, popup closed', async () => {
    const { bridge, popup } = setup(() => 'network-error');
    const e = await rejection(bridge.authenticate(NONCE));
    expect(e).toMatchObject({ code: 'NotRunning', status: 0 });
    expect(e.hint).toMatch(/Install cardbridge, or start it: sudo systemctl enable --now cardbridge/);
    expect(e.hint).not.toContain('--user');
    expect(e.text).toBe('這台電腦上的 cardbridge 沒有回應（未安裝或未啟動） (cardbridge does not answer on this computer (not installed or not running))');
    expect(popup!.closed).toBe(true);
    expect(await rejection(bridge.status())).toMatchObject({ code: 'NotRunning' });
  });

  it('popup blocked: a second try when the 202 arrives, else DELETE and PopupBlocked', async () => {
    let s = setup((_, i) => (i === 0 ? { status: 202, body: PENDING } : { status: 204 }), [null, null]);
    const e = await rejection(s.bridge.authenticate(NONCE));
    expect(e).toMatchObject({ code: 'PopupBlocked' });
    expect(s.calls.map((c) => c.method)).toEqual(['POST', 'DELETE']);

    const late = new FakePopup();
    s = setup((_, i) => (i === 0 ? { status: 202, body: PENDING } : { status: 200, body: { id: 'r-1', state: 'done', result: { token: TOKEN } } }), [null, late]);
    await expect(s.bridge.authenticate(NONCE)).resolves.toEqual(TOKEN);
    expect(s.opened.map((o) => o.url)).toEqual(['about:blank', `${BASE}/approve/r-1`]);
    expect(late.closed).toBe(true);
  });

  it('the user closing the blank popup before the 202 arrives cancels', async () => {
    const popup = new FakePopup();
    const s = setup((_, i) => {
      if (i === 0) {
        popup.close();
        return { status: 202, body: PENDING };
      }
      return { status: 204 };
    }, [popup]);
    expect(await rejection(s.bridge.readNhi({ reader: 'R1' }))).toMatchObject({ code: 'Cancelled' });
    expect(s.calls[0]!.body).toEqual({ reader: 'R1' });
    expect(s.calls[1]!.method).toBe('DELETE');
  });

  it('refuses bad input without opening a popup or calling the bridge', async () => {
    const { bridge, opened, calls } = setup(() => ({ status: 200, body: {} }));
    expect(await rejection(bridge.authenticate('short'))).toMatchObject({ code: 'InvalidInput' });
    expect(await rejection(bridge.sign({ format: 'pkcs1' }))).toMatchObject({ code: 'InvalidInput' });
    expect(await rejection(bridge.sign({ data: 'a', digest: new Uint8Array(32) }))).toMatchObject({ code: 'InvalidInput' });
    expect(opened).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('follows an absolute approveUrl on the same listener under another loopback name', async () => {
    const approveUrl = 'https://localhost:39443/ui/approve/r-1#c2VjcmV0';
    const { bridge, popup } = setup((_, i) => (i === 0 ? { status: 202, body: { ...PENDING, approveUrl } } : { status: 200, body: { id: 'r-1', state: 'done', result: { token: TOKEN } } }));
    await expect(bridge.authenticate(NONCE)).resolves.toEqual(TOKEN);
    expect(popup!.urls).toEqual([approveUrl]);
  });

  it('refuses an approveUrl that is not on the bridge', async () => {
    const { bridge, calls, popup } = setup((_, i) => (i === 0 ? { status: 202, body: { ...PENDING, approveUrl: 'https://evil.example/approve' } } : { status: 204 }));
    expect(await rejection(bridge.authenticate(NONCE))).toMatchObject({ code: 'ProtocolError' });
    expect(popup!.urls).toEqual([]);
    expect(calls[1]!.method).toBe('DELETE');
  });
});

describe('client: routes without the user', () => {
  it('status and readers', async () => {
    const status = { version: '0.1.0', api: 'v1', serviceAvailable: true, readers: [] };
    const readers = [{ name: 'R1', cardPresent: true, atr: '3B', card: { kind: 'nhi' } }];
    const { bridge, opened, calls } = setup((call) => (call.url.endsWith('/status') ? { status: 200, body: status } : { status: 200, body: { readers } }));
    await expect(bridge.status()).resolves.toEqual(status);
    await expect(bridge.readers()).resolves.toEqual(readers);
    expect(opened).toEqual([]);
    expect(calls.map((c) => c.method)).toEqual(['GET', 'GET']);
  });
});

describe('client: events', () => {
  class FakeSocket implements WebSocketLike {
    static all: FakeSocket[] = [];
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: unknown) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    closedByClient = false;
    constructor(readonly url: string) {
      FakeSocket.all.push(this);
    }
    close(): void {
      this.closedByClient = true;
      this.onclose?.({});
    }
  }

  it('delivers events, reconnects with backoff, and stops on unsubscribe', async () => {
    FakeSocket.all = [];
    const { timers, delays } = fastTimers();
    const bridge = connect({ base: 'https://localhost:39443/', WebSocket: FakeSocket, timers, fetch: () => Promise.reject(new Error('unused')) });
    const events: unknown[] = [];
    const connection: boolean[] = [];
    const stop = bridge.events((e) => events.push(e), { onConnectionChange: (c) => connection.push(c) });
    expect(FakeSocket.all).toHaveLength(1);
    const first = FakeSocket.all[0]!;
    expect(first.url).toBe('wss://localhost:39443/v1/events');
    first.onopen!({});
    first.onmessage!({ data: JSON.stringify({ type: 'snapshot', serviceAvailable: true, readers: [] }) });
    first.onmessage!({ data: 'not json' });
    first.onmessage!({ data: JSON.stringify({ type: 'card-inserted', reader: 'R1', card: { atr: '3B', type: 'nhi' } }) });
    expect(events).toEqual([
      { type: 'snapshot', serviceAvailable: true, readers: [] },
      { type: 'card-inserted', reader: 'R1', card: { atr: '3B', type: 'nhi' } },
    ]);

    // the bridge goes away: retries after 500 ms, then 1 s, …
    first.onclose!({});
    expect(connection).toEqual([true, false]);
    await new Promise((r) => setTimeout(r, 20));
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1]!.onclose!({}); // refused again
    await new Promise((r) => setTimeout(r, 20));
    expect(FakeSocket.all).toHaveLength(3);
    expect(delays).toEqual([500, 1000]);
    FakeSocket.all[2]!.onopen!({}); // back: the backoff starts over
    FakeSocket.all[2]!.onclose!({});
    expect(delays).toEqual([500, 1000, 500]);
    await new Promise((r) => setTimeout(r, 20));

    stop();
    const last = FakeSocket.all.at(-1)!;
    expect(last.closedByClient).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(FakeSocket.all.at(-1)).toBe(last); // no reconnection after unsubscribe
  });
});


describe('detect(): exactly one state, without CORS', () => {
  type Outcome = 'load' | 'error' | 'timeout';
  function probe(images: Record<string, Outcome>, permission: Array<'granted' | 'denied' | 'prompt' | undefined>) {
    const loads: string[] = [];
    let asked = 0;
    return {
      loads,
      options: {
        origin: 'https://www.example.gov.tw',
        loadImage: async (url: string, cors: boolean) => {
          const key = `${cors ? 'cors ' : ''}${url.replace(/\?.*$/, '')}`;
          loads.push(key);
          return images[key] ?? 'error';
        },
        permissionState: async () => permission[Math.min(asked++, permission.length - 1)],
      },
    };
  }
  const SECURE = 'https://127.0.0.1:39443/v1/probe.gif';
  const HTTP = 'http://127.0.0.1:61161/v1/probe.gif';

  it('ready: the image loads, and in CORS mode too', async () => {
    const p = probe({ [SECURE]: 'load', [`cors ${SECURE}`]: 'load' }, [undefined]);
    expect(await detect(p.options)).toMatchObject({ state: 'Ready', message: expect.stringContaining('已就緒') });
    expect(p.loads).toEqual([SECURE, `cors ${SECURE}`]);
  });

  it('site not allowed: the plain image loads, the CORS one does not; the hint names this origin', async () => {
    const d = await detect(probe({ [SECURE]: 'load' }, ['granted']).options);
    expect(d).toMatchObject({ state: 'SiteNotAllowed', hint: expect.stringContaining('sudo cardbridge sites allow https://www.example.gov.tw') });
  });

  it('certificate not trusted: https fails, cardbridge’s own http listener answers', async () => {
    const d = await detect(probe({ [HTTP]: 'load' }, [undefined]).options);
    expect(d).toMatchObject({ state: 'CertificateUntrusted', hint: expect.stringContaining('sudo cardbridge certs trust') });
  });

  it('not running: nothing answers', async () => {
    const p = probe({}, ['prompt']);
    expect(await detect(p.options)).toMatchObject({ state: 'NotRunning', hint: expect.stringContaining('https://127.0.0.1:39443/') });
    expect(p.loads).toEqual([SECURE, HTTP]);
  });

  it('blocked by the browser: permission denied before or after the probe, or the prompt left unanswered', async () => {
    expect(await detect(probe({}, ['denied']).options)).toMatchObject({ state: 'BlockedByBrowser', hint: expect.stringContaining('sudo cardbridge browsers allow') });
    expect(await detect(probe({}, ['prompt', 'denied']).options)).toMatchObject({ state: 'BlockedByBrowser' });
    expect(await detect(probe({ [SECURE]: 'timeout' }, ['prompt']).options)).toMatchObject({ state: 'BlockedByBrowser' });
  });
});
