/**
 * Reliability under faults (docs/reliability.md): the whole daemon (startDaemon, every listener)
 * in real PC/SC mode against pcscd + vpcd with virtual cards, and — for what vpcd cannot do
 * (a reader unplugged) or what needs no pcscd (idle and half-open connections) — the same
 * listeners over mock readers. Every test is bounded in time and count; loopback only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:https';
import { jest } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { type ClientOptions, WebSocket } from 'ws';
import { SitesStore } from '../../src/config/sites-store.js';
import { DEFAULT_CONFIG, type DaemonConfig } from '../../src/daemon/config.js';
import { type RunningDaemon, startDaemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/daemon/logger.js';
import { DEFAULT_LISTENERS } from '../../src/config/listeners.js';
import { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';
import type { VirtualCard } from '../../src/emulator/virtual-card.js';
import { NHI_TEST_IDENTITY, VirtualNhiCard } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { VirtualMoicaGen1Card } from '../../src/emulator/moica/virtual-moica-gen1.js';
import { getTestPki } from '../../src/emulator/moica/test-pki.js';
import { EmulatedSam } from '../../src/emulator/nhi/emulated-sam.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import type { RegistryEvent } from '../../src/readers/types.js';
import { buildNativeApp } from '../../src/server/native/app.js';
import { buildHipkiApp } from '../../src/server/hipki/app.js';
import { buildNhiHttpApp, buildNhiWsApp } from '../../src/server/nhi/index.js';
import { memoryAudit } from '../../src/server/shared/audit.js';
import { RET } from '../../src/server/hipki/ret-codes.js';
import { MoicaService } from '../../src/services/moica/moica-service.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { ensureServerCertificate } from '../../src/certs/store.js';
import { EventRecorder } from '../helpers/events.js';
import { type HttpAnswer, request } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { Pcscd, VPCD_PORTS, VPCD_READERS, describeSystem } from '../helpers/system-rig.js';

jest.setTimeout(30_000);

const SITE = 'https://reliability.example.gov.tw';
const CARD_NO = NHI_TEST_IDENTITY.cardNumber;
const PIN = '123456';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Ports = Record<(typeof DEFAULT_LISTENERS)[number]['name'], number>;

async function daemonConfig(): Promise<{ config: DaemonConfig; ports: Ports }> {
  const config = structuredClone(DEFAULT_CONFIG);
  const ports = {} as Ports;
  for (const spec of DEFAULT_LISTENERS) {
    ports[spec.name] = await freePort();
    config.listeners[spec.name] = { enabled: true, port: ports[spec.name] };
  }
  // The load below is far above a person's rate; the limiter is tested in the unit tests.
  config.rateLimit = { perSecond: 100_000, burst: 100_000 };
  config.logLevel = 'silent';
  return { config, ports };
}

/** Clients of the running daemon's listeners, as pages use them. */
class Clients {
  constructor(
    private readonly ports: Ports,
    private readonly ca: string,
  ) {}

  nativeBasic(): Promise<HttpAnswer> {
    return request({ port: this.ports.native, path: '/v1/nhi/basic', method: 'POST', ca: this.ca, headers: { origin: SITE, 'content-type': 'application/json' }, body: '{}' });
  }

  httpBasic(): Promise<HttpAnswer> {
    return request({ port: this.ports['nhi-http'], path: '/api/GetBasic', method: 'POST', headers: { origin: SITE, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  }

  pkcs11info(): Promise<HttpAnswer> {
    return request({ port: this.ports.hipki, path: '/pkcs11info', headers: { origin: SITE } });
  }

  hipkiSign(tbs: string): Promise<HttpAnswer> {
    const pkg = { func: 'MakeSignature', signatureType: 'PKCS1', tbs, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin: PIN };
    return request({
      port: this.ports.hipki,
      path: '/sign',
      method: 'POST',
      headers: { origin: SITE, 'content-type': 'application/x-www-form-urlencoded' },
      body: `tbsPackage=${JSON.stringify(pkg).replace(/\+/g, '%2B')}`,
    });
  }

  /** An /echo connection that answers one question at a time. */
  async echo(): Promise<{ ask(text: string): Promise<string>; close(): void }> {
    const options: ClientOptions & RequestOptions = { ca: this.ca, servername: 'localhost', origin: SITE, headers: { host: `127.0.0.1:${this.ports['nhi-ws']}` } };
    const ws = new WebSocket(`wss://127.0.0.1:${this.ports['nhi-ws']}/echo`, options);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return {
      ask: (text) =>
        new Promise((resolve) => {
          ws.once('message', (data) => resolve(data.toString()));
          ws.send(text);
        }),
      close: () => ws.close(),
    };
  }

  /** The native /v1/events stream, recorded. */
  async events(): Promise<{ seen: RegistryEvent[]; waitFor(match: (e: RegistryEvent) => boolean, ms?: number): Promise<RegistryEvent>; close(): void }> {
    const options: ClientOptions & RequestOptions = { ca: this.ca, servername: 'localhost', headers: { host: `127.0.0.1:${this.ports.native}` } };
    const ws = new WebSocket(`wss://127.0.0.1:${this.ports.native}/v1/events`, options);
    const seen: RegistryEvent[] = [];
    ws.on('message', (data) => seen.push(JSON.parse(data.toString()) as RegistryEvent));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return {
      seen,
      waitFor: async (match, ms = 5000) => {
        const deadline = Date.now() + ms;
        for (;;) {
          const found = seen.find(match);
          if (found) return found;
          if (Date.now() > deadline) throw new Error(`no such event on /v1/events within ${ms} ms; saw ${JSON.stringify(seen)}`);
          await sleep(20);
        }
      },
      close: () => ws.close(),
    };
  }
}

/** An answer is either right, or an error in the protocol's own format; anything else is a defect. */
type Verdict = 'ok' | 'clean-error' | 'bad';
function judgeNative(answer: HttpAnswer): Verdict {
  if (answer.status === 200) return answer.json().cardNumber === CARD_NO ? 'ok' : 'bad';
  const problem = answer.json<{ code?: string; status?: number }>();
  const clean = String(answer.headers['content-type']).startsWith('application/problem+json') && problem.status === answer.status;
  return clean && ['NoService', 'NoReader', 'NoCard', 'CardRemoved', 'TransportError', 'Busy'].includes(problem.code ?? '') ? 'clean-error' : 'bad';
}
function judgeNhiHttp(answer: HttpAnswer): Verdict {
  if (answer.status !== 200) return 'bad';
  const body = answer.json<{ result?: string; card_no?: string }>();
  if (body.result === '0000') return body.card_no === CARD_NO ? 'ok' : 'bad';
  // 7001 service, 7002 reader, 7003 busy, 7004 card, 8013 transport (src/server/nhi/error-codes.ts)
  return ['7001', '7002', '7003', '7004', '8013'].includes(body.result ?? '') ? 'clean-error' : 'bad';
}

/** Records every APDU the card receives, and can pull itself out of vpcd at a chosen command. */
class WatchedCard implements VirtualCard {
  readonly atr: Buffer;
  readonly received: Buffer[] = [];
  slot: VpcdCardSlot | undefined;
  private pullOutAt: ((apdu: Buffer) => boolean) | undefined;

  constructor(private readonly inner: VirtualCard) {
    this.atr = inner.atr;
  }

  /** The next APDU matching `at` is never answered: the card leaves vpcd instead. */
  pullOutOn(at: (apdu: Buffer) => boolean): void {
    this.pullOutAt = at;
  }

  reset(): void {
    this.inner.reset?.();
  }

  async process(apdu: Buffer): Promise<Buffer> {
    this.received.push(Buffer.from(apdu));
    if (this.pullOutAt?.(apdu)) {
      this.pullOutAt = undefined;
      await this.slot!.remove();
      return Buffer.from([0x6f, 0x00]); // never delivered: the socket is gone
    }
    return Buffer.from(await this.inner.process(apdu));
  }
}

describeSystem('reliability: the daemon over real pcscd + vpcd', () => {
  const pcscd = new Pcscd();
  let dir: string;
  let daemon: RunningDaemon;
  let clients: Clients;
  let events: EventRecorder;
  let nhiCard: WatchedCard;
  let moicaCard: WatchedCard;
  let nhiSlot: VpcdCardSlot;
  let moicaSlot: VpcdCardSlot;


  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-reliability-'));
    await pcscd.start();
    nhiCard = new WatchedCard(new VirtualNhiCard());
    moicaCard = new WatchedCard(new VirtualMoicaGen1Card(await getTestPki(), { pin: PIN }));
    nhiSlot = new VpcdCardSlot(nhiCard, { port: VPCD_PORTS[0] });
    moicaSlot = new VpcdCardSlot(moicaCard, { port: VPCD_PORTS[1] });
    nhiCard.slot = nhiSlot;
    moicaCard.slot = moicaSlot;
    await Promise.all([nhiSlot.insert(), moicaSlot.insert()]);
    const { config, ports } = await daemonConfig();
    const stateDir = join(dir, 'state');
    await SitesStore.inStateDir(stateDir).grant(SITE, 'nhi.read');
    daemon = await startDaemon({ config, mock: false, logger: createLogger('silent'), stateDir });
    events = new EventRecorder(daemon.registry);
    clients = new Clients(ports, daemon.tls.ca);
    // pcscd may still be polling the vpcd slots when the daemon starts.
    for (const reader of VPCD_READERS) {
      if (!daemon.registry.readers().find((r) => r.name === reader)?.card) await events.waitFor((e) => e.type === 'card-inserted' && e.reader === reader, 8000, 0);
    }
  });

  afterAll(async () => {
    await daemon?.stop();
    await Promise.all([nhiSlot?.remove(), moicaSlot?.remove()]);
    await pcscd.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pcscd killed and restarted under load: every answer is right or a clean error, and reads succeed again within 5 s', async () => {
    const stream = await clients.events();
    const verdicts: { at: number; route: string; verdict: Verdict; detail: string }[] = [];
    let running = true;
    const worker = async (route: 'native' | 'nhi-http') => {
      while (running) {
        const at = Date.now();
        try {
          const answer = route === 'native' ? await clients.nativeBasic() : await clients.httpBasic();
          const verdict = route === 'native' ? judgeNative(answer) : judgeNhiHttp(answer);
          verdicts.push({ at, route, verdict, detail: `${answer.status} ${answer.text.slice(0, 160)}` });
        } catch (e) {
          verdicts.push({ at, route, verdict: 'bad', detail: `connection failed: ${(e as Error).message}` });
        }
      }
    };
    const load = [...Array.from({ length: 3 }, () => worker('native')), ...Array.from({ length: 3 }, () => worker('nhi-http'))];

    await sleep(500);
    const killedAt = Date.now();
    const beforeKill = events.events.length;
    await pcscd.stop('SIGKILL');
    await events.waitFor((e) => e.type === 'service-lost', 5000, beforeKill);
    await sleep(500);
    await pcscd.start();
    const restartedAt = Date.now();
    const deadline = restartedAt + 5000;
    const successAfterRestart = (route: string) => verdicts.some((v) => v.route === route && v.verdict === 'ok' && v.at >= restartedAt);
    while (!(successAfterRestart('native') && successAfterRestart('nhi-http')) && Date.now() < deadline) await sleep(20);
    const recoveredMs = Date.now() - restartedAt;
    running = false;
    await Promise.all(load);
    stream.close();

    const bad = verdicts.filter((v) => v.verdict === 'bad');
    expect(bad).toEqual([]);
    expect(verdicts.filter((v) => v.verdict === 'ok' && v.at < killedAt).length).toBeGreaterThan(0);
    expect(verdicts.filter((v) => v.verdict === 'clean-error').length).toBeGreaterThan(0);
    expect(successAfterRestart('native') && successAfterRestart('nhi-http')).toBe(true);
    expect(recoveredMs).toBeLessThan(5000);
    // Every page listening on /v1/events saw the readers go and come back.
    await stream.waitFor((e) => e.type === 'service-restored');
    for (const reader of VPCD_READERS) {
      expect(stream.seen).toContainEqual({ type: 'reader-removed', reader });
      expect(stream.seen).toContainEqual({ type: 'reader-added', reader });
    }
    // The MOICA card is back too, for the next test.
    const moicaBack = (e: RegistryEvent) => e.type === 'card-inserted' && e.reader === VPCD_READERS[1];
    if (!daemon.registry.readers().find((r) => r.name === VPCD_READERS[1])?.card) await events.waitFor(moicaBack, 8000, beforeKill);
  });

  it('a MOICA card pulled out mid-signature answers CardRemoved (HiPKI: no card); after reinsertion the next signature succeeds', async () => {
    const first = await clients.hipkiSign('before');
    expect(first.json()).toMatchObject({ func: 'sign', ret_code: RET.OK });

    // Pull the card out when the private-key operation (gen 1: 80 EA) arrives, after VERIFY succeeded.
    moicaCard.pullOutOn((apdu) => apdu[0] === 0x80 && apdu[1] === 0xea);
    const since = events.events.length;
    const cut = await clients.hipkiSign('interrupted');
    expect(cut.status).toBe(200);
    expect(cut.json()).toMatchObject({ func: 'sign', ret_code: RET.NO_CARD });
    expect(cut.json().message2).toMatch(/removed/);
    await events.waitFor((e) => e.type === 'card-removed' && e.reader === VPCD_READERS[1], 5000, since);

    const back = events.events.length;
    await moicaSlot.insert();
    await events.waitFor((e) => e.type === 'card-inserted' && e.reader === VPCD_READERS[1], 8000, back);
    const after = await clients.hipkiSign('after');
    expect(after.json()).toMatchObject({ func: 'sign', ret_code: RET.OK });
    expect(typeof after.json().signature).toBe('string');
  });

  it('50 concurrent clients on one card over three protocols: every answer right, the card read once per insertion with contiguous APDUs', async () => {
    /** A fresh insertion: nothing about the card is remembered yet. */
    const reinsert = async () => {
      const since = events.events.length;
      await nhiSlot.remove();
      await events.waitFor((e) => e.type === 'card-removed' && e.reader === VPCD_READERS[0], 8000, since);
      const back = events.events.length;
      await nhiSlot.insert();
      await events.waitFor((e) => e.type === 'card-inserted' && e.reader === VPCD_READERS[0], 8000, back);
    };
    // One read on its own gives the operation's APDU sequence; a second read of the same card is answered from memory.
    await reinsert();
    let mark = nhiCard.received.length;
    expect(judgeNative(await clients.nativeBasic())).toBe('ok');
    const sequence = nhiCard.received.slice(mark).map((a) => a.toString('hex'));
    expect(sequence.length).toBeGreaterThanOrEqual(2);
    mark = nhiCard.received.length;
    expect(judgeNative(await clients.nativeBasic())).toBe('ok');
    expect(nhiCard.received.length).toBe(mark);

    await reinsert();
    const sockets = await Promise.all(Array.from({ length: 17 }, () => clients.echo()));
    mark = nhiCard.received.length;
    const answers = await Promise.all([
      ...Array.from({ length: 17 }, async () => judgeNative(await clients.nativeBasic())),
      ...Array.from({ length: 16 }, async () => judgeNhiHttp(await clients.httpBasic())),
      ...sockets.map(async (s) => ((await s.ask('GetBasic')).startsWith(`GetBasic:${CARD_NO},`) ? 'ok' : 'bad')),
    ]);
    sockets.forEach((s) => s.close());
    expect(answers).toHaveLength(50);
    expect(answers.every((a) => a === 'ok')).toBe(true);

    // The first of the 50 to reach the card reads it, whole and uninterrupted; the others are answered from memory.
    expect(nhiCard.received.slice(mark).map((a) => a.toString('hex'))).toEqual(sequence);
  });
});

describe('reliability: a reader unplugged while pages use it (mock readers: vpcd readers cannot be unplugged)', () => {
  let dir: string;
  let daemon: RunningDaemon;
  let clients: Clients;
  let ports: Ports;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-reliability-mock-'));
    const made = await daemonConfig();
    ports = made.ports;
    const stateDir = join(dir, 'state');
    await SitesStore.inStateDir(stateDir).grant(SITE, 'nhi.read');
    daemon = await startDaemon({ config: made.config, mock: true, logger: createLogger('silent'), stateDir, extraOrigins: [] });
    clients = new Clients(ports, daemon.tls.ca);
  });

  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports reader-removed; every listener answers NoReader cleanly; works again when the reader returns', async () => {
    const control = daemon.mock!.control;
    const stream = await clients.events();
    expect(judgeNative(await clients.nativeBasic())).toBe('ok');
    const echo = await clients.echo();
    expect(await echo.ask('GetBasic')).toMatch(/^GetBasic:/);

    const names = daemon.registry.readers().map((r) => r.name);
    for (const name of names) control.removeReader(name);
    for (const name of names) await stream.waitFor((e) => e.type === 'reader-removed' && e.reader === name);

    const native = await clients.nativeBasic();
    expect(native.status).toBe(409);
    expect(native.json()).toMatchObject({ code: 'NoReader', status: 409 });
    expect(native.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((await clients.httpBasic()).json()).toEqual({ result: '7002' });
    expect(await echo.ask('GetBasic')).toBe('7002');
    expect((await clients.pkcs11info()).json()).toMatchObject({ func: 'pkcs11info', ret_code: RET.NO_READER });

    // The reader comes back empty (NoCard), then with the card.
    control.addReader(names[0]!);
    expect((await clients.nativeBasic()).json()).toMatchObject({ code: 'NoCard' });
    expect((await clients.httpBasic()).json()).toEqual({ result: '7004' });
    await control.insert(names[0]!, 'nhi');
    expect(judgeNative(await clients.nativeBasic())).toBe('ok');
    expect(judgeNhiHttp(await clients.httpBasic())).toBe('ok');
    expect(await echo.ask('GetBasic')).toMatch(/^GetBasic:/);
    echo.close();
    stream.close();
  });
});

describe('reliability: idle and half-open connections are closed by the listeners’ timeouts', () => {
  const TIMEOUT_MS = 1000;
  const SOCKETS = 20;
  let dir: string;
  let sam: EmulatedSam;
  const apps: { name: string; port: number; tls: boolean; app: FastifyInstance }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-reliability-idle-'));
    const registry = new MockReaderRegistry();
    registry.addReader('NHI');
    await registry.insertCard('NHI', new VirtualNhiCard());
    const sites = SitesStore.inStateDir(join(dir, 'state'));
    const cert = await ensureServerCertificate(join(dir, 'state'));
    const https = { key: cert.key, cert: cert.cert };
    sam = await EmulatedSam.start();
    const nhi = new NhiService(registry, { sam: { host: sam.host, port: sam.port } });
    const audit = memoryAudit();
    const common = { registry, sites, audit, logger: false as const, requestTimeoutMs: TIMEOUT_MS };
    const build: [string, boolean, (port: number) => Promise<FastifyInstance>][] = [
      ['native', true, (port) => buildNativeApp({ ...common, policy: () => sites.policy(), port, https })],
      ['hipki', false, (port) => buildHipkiApp({ ...common, moica: new MoicaService(registry), port })],
      ['nhi-ws', true, (port) => buildNhiWsApp({ ...common, nhi, port, https })],
      ['nhi-http', false, (port) => buildNhiHttpApp({ ...common, nhi, port })],
      ['nhi-https', true, (port) => buildNhiHttpApp({ ...common, nhi, port, https })],
    ];
    for (const [name, isTls, make] of build) {
      const port = await freePort();
      const app = await make(port);
      await app.listen({ port, host: '127.0.0.1' });
      apps.push({ name, port, tls: isTls, app });
    }
  });

  afterAll(async () => {
    await Promise.all(apps.map((a) => a.app.close()));
    await sam?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a connection (TLS handshake done when `isTls`), sends `bytes`; resolves once connected with when the server closed it. */
  function open(port: number, isTls: boolean, bytes: string): Promise<{ closed: Promise<number> }> {
    return new Promise((resolve, reject) => {
      const socket: net.Socket = isTls ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now())));
      socket.once(isTls ? 'secureConnect' : 'connect', () => {
        if (bytes) socket.write(bytes);
        resolve({ closed });
      });
      socket.once('close', () => reject(new Error('closed before connecting')));
    });
  }

  it.each(['native', 'hipki', 'nhi-ws', 'nhi-http', 'nhi-https'])('%s: idle sockets and half-sent requests are closed after the timeout', async (name) => {
    const { port, tls: isTls } = apps.find((a) => a.name === name)!;
    const started = Date.now();
    const idle = await Promise.all(Array.from({ length: SOCKETS }, () => open(port, isTls, '')));
    const halfOpen = await Promise.all(Array.from({ length: SOCKETS }, () => open(port, isTls, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `)));
    // TLS listeners: plain TCP that never starts the handshake (half-sent ClientHello included).
    const noHandshake = isTls ? await Promise.all(Array.from({ length: SOCKETS }, (_, i) => open(port, false, i % 2 ? '' : '\x16\x03\x01\x02\x00'))) : [];
    const closedAt = await Promise.all([...idle, ...halfOpen, ...noHandshake].map((c) => c.closed));
    const slowest = Math.max(...closedAt) - started;
    expect(slowest).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(slowest).toBeLessThan(TIMEOUT_MS + 3000);
    // The listener still answers.
    const page = await request({ port, path: '/', ...(isTls ? { ca: (await ensureServerCertificate(join(dir, 'state'))).ca } : {}) });
    expect(page.status).toBeLessThan(500);
  });
});
