/**
 * Generated malformed requests against every listener (fast-check), over real sockets, with
 * mock readers holding virtual cards. For each: no crash, no 5xx except the documented 503 Busy
 * of the native API (too many requests waiting for the user / one PIN prompt per card), an
 * answer in the protocol's own error format, and the next good request still answered.
 * docs/reliability.md explains the choices.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { type ClientOptions, WebSocket } from 'ws';
import { SitesStore } from '../../../src/config/sites-store.js';
import { ensureServerCertificate } from '../../../src/certs/store.js';
import { EmulatedSam } from '../../../src/emulator/nhi/emulated-sam.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { buildNativeApp } from '../../../src/server/native/app.js';
import { buildHipkiApp } from '../../../src/server/hipki/app.js';
import { buildNhiHttpApp, buildNhiWsApp } from '../../../src/server/nhi/index.js';
import { memoryAudit } from '../../../src/server/shared/audit.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { type HttpAnswer, request } from '../../helpers/http.js';
import { freePort } from '../../helpers/ports.js';

jest.setTimeout(60_000);

const SITE = 'https://www.example.gov.tw';
const CARD_NO = NHI_TEST_IDENTITY.cardNumber;
const RUNS = { native: 500, hipki: 500, nhiHttp: 500, nhiHttps: 150, wsFrames: 600, wsUpgrades: 150, rawBytes: 150 };

// ——— generators ———
const printable = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@AZaz[\\]^_`{|}~'.split('')), maxLength: 40 });
const anyText = fc.oneof(printable, fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const jsonValue = fc.oneof(anyText, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(anyText, { maxLength: 3 }), fc.dictionary(printable, anyText, { maxKeys: 3 }));
const fieldsOf = (names: string[]) => fc.dictionary(fc.oneof(fc.constantFrom(...names), printable), jsonValue, { maxKeys: 6 });
/** Bodies: JSON objects with the protocol's field names, other JSON, form text, garbage, big, empty. */
const bodyOf = (names: string[]) =>
  fc.oneof(
    { weight: 4, arbitrary: fieldsOf(names).map((o) => JSON.stringify(o)) },
    { weight: 1, arbitrary: jsonValue.map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fieldsOf(names).map((o) => new URLSearchParams(Object.entries(o).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString()) },
    { weight: 2, arbitrary: anyText },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"', '[', 'null', '%', '%zz', 'tbsPackage=', 'tbsPackage={', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}') },
    { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 1_200_000 }).map((n) => 'a'.repeat(n)) },
  );
const contentType = fc.constantFrom(undefined, 'application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '', 'garbage/∞'.replace('∞', 'x'));
const origin = fc.constantFrom<string | undefined>(undefined, SITE, 'https://evil.example.com', 'null', 'http://www.example.gov.tw', 'https://www.example.gov.tw:443', 'not an origin', 'https://a.gov.tw.evil.com');
const method = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD');
const segment = fc.oneof(printable.map((s) => encodeURIComponent(s)), fc.constantFrom('..', '%2e%2e', '%00', '%', '%zz', '', '~', 'a'.repeat(300)));
const pathOf = (known: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...known), segment).map(([p, s]) => `${p}/${s}`) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...known), printable).map(([p, q]) => `${p}?${encodeURIComponent(q)}=${encodeURIComponent(q)}`) },
    { weight: 1, arbitrary: fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`) },
  );
const hostFor = (port: number) => fc.constantFrom(`127.0.0.1:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, 'evil.example.com', `127.0.0.1:${port + 1}`, '');

interface Malformed {
  method: string;
  path: string;
  contentType: string | undefined;
  origin: string | undefined;
  host: string;
  body: string;
  extra: Record<string, string>;
}
const requestOf = (port: number, paths: string[], fields: string[]): fc.Arbitrary<Malformed> =>
  fc.record({
    method,
    path: pathOf(paths),
    contentType,
    origin,
    host: hostFor(port),
    body: bodyOf(fields),
    extra: fc.dictionary(fc.constantFrom('sec-fetch-site', 'sec-fetch-mode', 'x-hipki-site', 'accept', 'transfer-encoding', 'expect', 'access-control-request-private-network', 'cookie'), printable, { maxKeys: 3 }),
  });

async function send(port: number, m: Malformed, ca?: string): Promise<HttpAnswer | Error> {
  const headers: Record<string, string> = { host: m.host, ...m.extra };
  if (m.contentType !== undefined) headers['content-type'] = m.contentType;
  if (m.origin !== undefined) headers.origin = m.origin;
  // A transfer-encoding the client does not speak would only test Node's client.
  delete headers['transfer-encoding'];
  delete headers.expect;
  const withBody = m.method !== 'GET' && m.method !== 'HEAD';
  // Node's client sends a DELETE/OPTIONS body without a length, i.e. a malformed stream: that is
  // the raw-bytes test's business, so these requests carry their length.
  if (withBody) headers['content-length'] = String(Buffer.byteLength(m.body));
  try {
    return await request({ port, path: m.path, method: m.method, headers, ...(withBody && { body: m.body }), ...(ca && { ca }) });
  } catch (e) {
    return e as Error;
  }
}

function describeCase(m: Malformed, answer: HttpAnswer | Error): string {
  const shown = { ...m, body: m.body.length > 200 ? `${m.body.slice(0, 200)}… (${m.body.length})` : m.body };
  return `${JSON.stringify(shown)} → ${answer instanceof Error ? answer.message : `${answer.status} ${answer.headers['content-type']} ${answer.text.slice(0, 200)}`}`;
}

const isJson = (a: HttpAnswer) => String(a.headers['content-type'] ?? '').includes('json');
const isPage = (a: HttpAnswer) => /^(text\/html|text\/javascript|text\/css|text\/plain|image\/bmp)/.test(String(a.headers['content-type'] ?? ''));
const parse = (a: HttpAnswer): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(a.text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

describe('fuzzing every listener with malformed requests', () => {
  let dir: string;
  let sam: EmulatedSam;
  let ca: string;
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [] });
  const apps: FastifyInstance[] = [];
  const ports = { native: 0, hipki: 0, nhiWs: 0, nhiHttp: 0, nhiHttps: 0 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-fuzz-'));
    const stateDir = join(dir, 'state');
    const sites = SitesStore.inStateDir(stateDir);
    await sites.grant(SITE, 'nhi.read');
    const cert = await ensureServerCertificate(stateDir);
    ca = cert.ca;
    const https = { key: cert.key, cert: cert.cert };
    sam = await EmulatedSam.start();
    registry.addReader('NHI');
    registry.addReader('MOICA');
    await registry.insertCard('NHI', new VirtualNhiCard());
    await registry.insertCard('MOICA', new VirtualMoicaGen2Card(await getTestPki(), { pin: '123456' }));
    const nhi = new NhiService(registry, { sam: { host: sam.host, port: sam.port, connectTimeoutMs: 2000, stepTimeoutMs: 2000 } });
    const moica = new MoicaService(registry);
    const audit = memoryAudit();
    const rateLimit = { perSecond: 1e9, burst: 1e9 };
    const common = { registry, sites, audit, logger: false as const, rateLimit };
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
    const built: [FastifyInstance, number][] = [
      [await buildNativeApp({ ...common, policy: () => sites.policy(), port: ports.native, https, cards: { services: { nhi, moica }, sites, audit } }), ports.native],
      [await buildHipkiApp({ ...common, moica, port: ports.hipki }), ports.hipki],
      [await buildNhiWsApp({ ...common, nhi, port: ports.nhiWs, https }), ports.nhiWs],
      [await buildNhiHttpApp({ ...common, nhi, port: ports.nhiHttp }), ports.nhiHttp],
      [await buildNhiHttpApp({ ...common, nhi, port: ports.nhiHttps, https }), ports.nhiHttps],
    ];
    for (const [app, port] of built) {
      await app.listen({ port, host: '127.0.0.1' });
      apps.push(app);
    }
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.close()));
    await sam?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // ——— the good requests that must still work after each malformed one ———
  const goodNative = async () => {
    const a = await request({ port: ports.native, path: '/v1/nhi/basic', method: 'POST', ca, headers: { origin: SITE, 'content-type': 'application/json' }, body: '{}' });
    return a.status === 200 && a.json().cardNumber === CARD_NO;
  };
  const goodHipki = async () => {
    const a = await request({ port: ports.hipki, path: '/pkcs11info', headers: { origin: SITE } });
    return a.status === 200 && a.json().ret_code === 0;
  };
  const goodNhiHttp = async (port: number, tls?: string) => {
    const a = await request({ port, path: '/api/GetBasic', method: 'POST', headers: { origin: SITE, 'content-type': 'application/x-www-form-urlencoded' }, body: '', ...(tls && { ca: tls }) });
    return a.status === 200 && a.json().result === '0000' && a.json().card_no === CARD_NO;
  };

  it('native API (HTTPS): problem JSON for every refusal, no 5xx but 503 Busy', async () => {
    const paths = ['/v1/status', '/v1/readers', '/v1/nhi/basic', '/v1/nhi/hsign', '/v1/moica/certificates', '/v1/moica/sign', '/v1/moica/authenticate', '/v1/requests/abcdefghijkl', '/v1/openapi.json', '/ui/approve/abcdefghijkl', '/v1/events', '/'];
    const fields = ['reader', 'random', 'data', 'digest', 'hash', 'format', 'detached', 'nonce', 'pin', 'wait'];
    await fc.assert(
      fc.asyncProperty(requestOf(ports.native, paths, fields), async (m) => {
        const a = await send(ports.native, m, ca);
        const fail = (why: string) => new Error(`${why}: ${describeCase(m, a)}`);
        if (a instanceof Error) throw fail('no answer');
        if (a.status >= 500) {
          const problem = parse(a);
          if (!(a.status === 503 && problem?.code === 'Busy')) throw fail('5xx');
        }
        if (a.status >= 400 && m.method !== 'HEAD') {
          const problem = parse(a);
          if (!String(a.headers['content-type']).startsWith('application/problem+json') || typeof problem?.code !== 'string' || problem.status !== a.status) throw fail('not problem JSON');
        }
        if (!(await goodNative())) throw fail('the next good request failed');
      }),
      { numRuns: RUNS.native },
    );
  });

  it('HiPKI (61161): HiPKI JSON with a numeric ret_code for every refusal, never 5xx', async () => {
    const paths = ['/sign', '/umakeSig', '/decrypt', '/pkcs11info', '/p11Image.bmp', '/', '/popupForm', '/ChtPopupForm', '/selfTest.htm', '/addDomain', '/hipki-ui/popup.js'];
    const tbsFields = ['func', 'signatureType', 'tbs', 'tbsEncoding', 'hashAlgorithm', 'pin', 'slotDescription', 'readername', 'withCardSN', 'withSCAP', 'nonce', 'cipher', 'keyLabel', 'domain'];
    const tbsBody = fc.oneof(
      bodyOf(tbsFields),
      fieldsOf(tbsFields).map((pkg) => `tbsPackage=${JSON.stringify(pkg).replace(/\+/g, '%2B')}`),
      fieldsOf(tbsFields).map((pkg) => `tbsPackage=${encodeURIComponent(JSON.stringify({ func: 'MakeSignature', ...pkg }))}`),
    );
    await fc.assert(
      fc.asyncProperty(requestOf(ports.hipki, paths, tbsFields), tbsBody, async (m0, body) => {
        const m = { ...m0, body };
        const a = await send(ports.hipki, m);
        const fail = (why: string) => new Error(`${why}: ${describeCase(m, a)}`);
        if (a instanceof Error) throw fail('no answer');
        if (a.status >= 500) throw fail('5xx');
        if (m.method !== 'HEAD' && a.status !== 204 && !isPage(a)) {
          const reply = parse(a);
          if (!isJson(a) || typeof reply?.ret_code !== 'number') throw fail('not HiPKI JSON');
        }
        if (!(await goodHipki())) throw fail('the next good request failed');
      }),
      { numRuns: RUNS.hipki },
    );
  });

  const nhiHttpProperty = (port: number, runs: number, tlsCa?: string) =>
    fc.assert(
      fc.asyncProperty(
        requestOf(
          port,
          ['/api/GetVersion', '/api/GetRandom', '/api/GetBasic', '/api/SignHC', '/api/EncryptPwd', '/api/GetEncryptBasic', '/GetStatus.bmp', '/api/GetCardStatus.bmp', '/auth.html', '/auth/run', '/'],
          ['random', 'pwd', 'origin', 'version'],
        ),
        async (m) => {
          const a = await send(port, m, tlsCa);
          const fail = (why: string) => new Error(`${why}: ${describeCase(m, a)}`);
          if (a instanceof Error) throw fail('no answer');
          if (a.status >= 500) throw fail('5xx');
          if (m.method !== 'HEAD' && a.status !== 204 && !isPage(a)) {
            const reply = parse(a);
            if (typeof reply?.result !== 'string' || !/^\d{4}$/.test(reply.result)) throw fail('not NHI JSON {"result":"dddd"}');
          }
          if (!(await goodNhiHttp(port, tlsCa))) throw fail('the next good request failed');
        },
      ),
      { numRuns: runs },
    );

  it('NHI HTTP (59001): {"result":"dddd"} for every refusal, never 5xx', async () => {
    await nhiHttpProperty(ports.nhiHttp, RUNS.nhiHttp);
  });

  it('NHI HTTPS (59002): the same over TLS', async () => {
    await nhiHttpProperty(ports.nhiHttps, RUNS.nhiHttps, ca);
  });

  describe('NHI WebSocket (7777 /echo)', () => {
    const open = (extra: { origin?: string; host?: string; path?: string } = {}) =>
      new Promise<WebSocket>((resolve, reject) => {
        const options: ClientOptions & RequestOptions = {
          ca,
          servername: 'localhost',
          headers: { host: extra.host ?? `127.0.0.1:${ports.nhiWs}` },
          ...((extra.origin ?? SITE) !== '' && { origin: extra.origin ?? SITE }),
        };
        const ws = new WebSocket(`wss://127.0.0.1:${ports.nhiWs}${extra.path ?? '/echo'}`, options);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade answered ${res.statusCode}`), { status: res.statusCode })));
      });
    const ask = (ws: WebSocket, data: string | Buffer, binary: boolean) =>
      new Promise<{ reply?: string; closed?: number }>((resolve) => {
        const onMessage = (d: Buffer) => {
          ws.off('close', onClose);
          resolve({ reply: d.toString() });
        };
        const onClose = (code: number) => {
          ws.off('message', onMessage);
          resolve({ closed: code });
        };
        ws.once('message', onMessage);
        ws.once('close', onClose);
        ws.send(data, { binary });
      });

    it('frames: every reply is "Command:…" or a 4-digit code; oversized frames close with 1009; the next GetBasic works', async () => {
      let ws = await open();
      const commands = ['GetBasic', 'GetVersion', 'GetRandom', 'H_Sign?Random=', 'EnCrypt?Pwd=', 'SecureGetBasic', 'SecureGetBasicWithParam', 'getbasic', ''];
      const frame = fc.oneof(
        { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...commands), anyText).map(([c, s]) => ({ data: `${c}${s}`, binary: false })) },
        { weight: 2, arbitrary: anyText.map((s) => ({ data: s, binary: false })) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: true })) },
        { weight: 1, arbitrary: fc.integer({ min: 1025, max: 5000 }).map((n) => ({ data: 'GetBasic'.padEnd(n, 'x'), binary: false })) },
      );
      await fc.assert(
        fc.asyncProperty(frame, async ({ data, binary }) => {
          const answer = await ask(ws, data, binary);
          const shown = typeof data === 'string' ? JSON.stringify(data.slice(0, 120)) : data.toString('hex');
          if (answer.closed !== undefined) {
            if (answer.closed !== 1009 || Buffer.byteLength(data) <= 1024) throw new Error(`closed with ${answer.closed} after ${shown}`);
            ws = await open();
          } else if (!/^(\d{4}|[A-Za-z_]+:.*)$/s.test(answer.reply!)) {
            throw new Error(`reply ${JSON.stringify(answer.reply)} to ${shown}`);
          }
          const good = await ask(ws, 'GetBasic', false);
          if (!good.reply?.startsWith(`GetBasic:${CARD_NO},`)) throw new Error(`GetBasic after ${shown}: ${JSON.stringify(good)}`);
        }),
        { numRuns: RUNS.wsFrames },
      );
      ws.close();
    });

    it('upgrades with malformed Origin, Host and path: 101, 403 or 404, never 5xx', async () => {
      const upgrade = fc.record({
        origin: fc.constantFrom('', SITE, 'https://evil.example.com', 'null', 'http://www.example.gov.tw', 'garbage'),
        host: fc.constantFrom(`127.0.0.1:${ports.nhiWs}`, `iccert.nhi.gov.tw:${ports.nhiWs}`, `localhost:${ports.nhiWs}`, 'evil.example.com', `127.0.0.1:${ports.nhiWs + 1}`),
        path: pathOf(['/echo', '/', '/echo/', '/v1/events']),
      });
      await fc.assert(
        fc.asyncProperty(upgrade, async (u) => {
          try {
            (await open(u)).close();
          } catch (e) {
            const status = (e as { status?: number }).status;
            if (status !== 403 && status !== 404) throw new Error(`${JSON.stringify(u)} → ${(e as Error).message}`);
          }
        }),
        { numRuns: RUNS.wsUpgrades },
      );
      const ws = await open();
      expect((await ask(ws, 'GetBasic', false)).reply).toMatch(/^GetBasic:/);
      ws.close();
    });
  });

  it('raw bytes on the plain-HTTP listeners: a 4xx or a closed connection, and the listener lives on', async () => {
    const garbage = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.tuple(method, anyText, printable).map(([m, p, h]) => Buffer.from(`${m} ${p} HTTP/1.1\r\nHost: ${h}\r\nContent-Length: ${p.length}\r\n\r\n${p}`)),
      fc.constantFrom('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n', 'POST /api/GetBasic HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'GET / HTTP/9.9\r\n\r\n', '\r\n\r\n').map((s) => Buffer.from(s)),
    );
    const raw = (port: number, bytes: Buffer) =>
      new Promise<string>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        let text = '';
        socket.on('data', (d) => (text += d.toString('latin1')));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(text));
        socket.on('connect', () => {
          socket.end(bytes);
          setTimeout(() => socket.destroy(), 1000);
        });
      });
    await fc.assert(
      fc.asyncProperty(garbage, fc.constantFrom(ports.hipki, ports.nhiHttp), async (bytes, port) => {
        const text = await raw(port, bytes);
        const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
        if (status && Number(status) >= 500) throw new Error(`${bytes.toString('latin1').slice(0, 120)} → ${text.slice(0, 200)}`);
        if (port === ports.hipki ? !(await goodHipki()) : !(await goodNhiHttp(port))) throw new Error('the next good request failed');
      }),
      { numRuns: RUNS.rawBytes },
    );
  });
});
