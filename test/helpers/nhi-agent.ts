import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { RequestOptions } from 'node:https';
import { type ClientOptions, WebSocket } from 'ws';
import { SitesStore } from '../../src/config/sites-store.js';
import { EmulatedSam } from '../../src/emulator/nhi/emulated-sam.js';
import { VirtualNhiCard, type VirtualNhiCardOptions } from '../../src/emulator/nhi/virtual-nhi-card.js';
import { MockReaderRegistry } from '../../src/readers/mock-registry.js';
import { memoryAudit } from '../../src/server/shared/audit.js';
import { NhiService } from '../../src/services/nhi/nhi-service.js';
import { ensureServerCertificate, type ServerCertificate } from '../../src/certs/index.js';
import { buildNhiHttpApp, buildNhiWsApp } from '../../src/server/nhi/index.js';
import { freePort } from './ports.js';

export const NHI_READER = 'NHI reader';

/** Everything an NHI agent listener needs, with a virtual card in a mock reader and an emulated SAM. */
export class NhiAgentRig {
  readonly registry = new MockReaderRegistry({ sharingRetryDelaysMs: [] });
  readonly audit = memoryAudit();
  card!: VirtualNhiCard;
  sam!: EmulatedSam;
  nhi!: NhiService;
  sites!: SitesStore;
  tls!: ServerCertificate;
  private dir!: string;
  private readonly apps: FastifyInstance[] = [];

  static async start(options: { card?: VirtualNhiCardOptions; extraOrigins?: string[]; stateDir?: string } = {}): Promise<NhiAgentRig> {
    const rig = new NhiAgentRig();
    rig.dir = mkdtempSync(join(tmpdir(), 'cardbridge-nhi-agent-'));
    const state = options.stateDir ?? join(rig.dir, 'state');
    rig.sites = SitesStore.inStateDir(state, undefined, options.extraOrigins ?? []);
    rig.tls = await ensureServerCertificate(state);
    rig.sam = await EmulatedSam.start();
    rig.nhi = new NhiService(rig.registry, { sam: { host: rig.sam.host, port: rig.sam.port, connectTimeoutMs: 2000, stepTimeoutMs: 2000 } });
    rig.registry.addReader(NHI_READER);
    rig.card = new VirtualNhiCard(options.card);
    await rig.registry.insertCard(NHI_READER, rig.card);
    return rig;
  }

  /** The WebSocket listener on `port` (a free one by default), listening on 127.0.0.1. */
  async ws(options: { port?: number; now?: () => Date; random?: (n: number) => Buffer } = {}): Promise<{ app: FastifyInstance; port: number }> {
    const port = options.port ?? (await freePort());
    const app = await buildNhiWsApp({
      nhi: this.nhi,
      sites: this.sites,
      audit: this.audit,
      registry: this.registry,
      port,
      https: { key: this.tls.key, cert: this.tls.cert },
      logger: false,
      ...(options.now && { now: options.now }),
      ...(options.random && { random: options.random }),
    });
    return this.listen(app, port);
  }

  async http(options: { port?: number; https?: boolean; now?: () => Date; random?: (n: number) => Buffer; withRegistry?: boolean } = {}): Promise<{ app: FastifyInstance; port: number }> {
    const port = options.port ?? (await freePort());
    const app = await buildNhiHttpApp({
      nhi: this.nhi,
      sites: this.sites,
      audit: this.audit,
      ...(options.withRegistry !== false && { registry: this.registry }),
      port,
      ...(options.https && { https: { key: this.tls.key, cert: this.tls.cert } }),
      logger: false,
      ...(options.now && { now: options.now }),
      ...(options.random && { random: options.random }),
    });
    return this.listen(app, port);
  }

  /**
   * The listener on its official port when that is free, else on a free one (a developer's
   * machine may run the vendor agent on 7777/59001/59002).
   */
  async preferring(start: (port: number) => Promise<{ app: FastifyInstance; port: number }>, port: number): Promise<{ app: FastifyInstance; port: number }> {
    try {
      return await start(port);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      return start(await freePort());
    }
  }

  private async listen(app: FastifyInstance, port: number): Promise<{ app: FastifyInstance; port: number }> {
    try {
      await app.listen({ port, host: '127.0.0.1' });
    } catch (e) {
      await app.close();
      throw e;
    }
    this.apps.push(app);
    return { app, port };
  }

  async close(): Promise<void> {
    await Promise.all(this.apps.map((a) => a.close()));
    await this.sam?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A WebSocket client that talks to the agent one frame at a time, as pages do. */
export class EchoClient {
  private readonly inbox: string[] = [];
  private waiting: ((message: string) => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(text);
      } else this.inbox.push(text);
    });
  }

  /** Connects to wss://127.0.0.1:port/echo with the given Host and Origin (none when null). */
  static connect(port: number, ca: string, options: { origin?: string | null; host?: string; path?: string } = {}): Promise<EchoClient> {
    const origin = options.origin === undefined ? 'https://www.example.gov.tw' : options.origin;
    const clientOptions: ClientOptions & RequestOptions = {
      ca,
      servername: 'localhost',
      headers: { host: options.host ?? `localhost:${port}` },
      ...(origin !== null && { origin }),
    };
    const ws = new WebSocket(`wss://127.0.0.1:${port}${options.path ?? '/echo'}`, clientOptions);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new EchoClient(ws)));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
      ws.once('error', reject);
    });
  }

  /** Sends one frame and resolves with the next frame received. */
  ask(command: string | Buffer): Promise<string> {
    const next = this.next();
    this.ws.send(command);
    return next;
  }

  next(timeoutMs = 10_000): Promise<string> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      this.waiting = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
  }

  close(): void {
    this.ws.close();
  }
}
