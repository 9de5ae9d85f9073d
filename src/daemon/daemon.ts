import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { CardBridgeError, asCardBridgeError } from '../errors.js';
import { ensureServerCertificate } from '../certs/store.js';
import { defaultStateDir } from '../config/paths.js';
import { SitesStore } from '../config/sites-store.js';
import type { MockControl } from '../demo/mock-control.js';
import { portHolders } from '../doctor/ports.js';
import type { EmulatedSam } from '../emulator/nhi/emulated-sam.js';
import { PcscReaderRegistry } from '../readers/pcsc-registry.js';
import type { ReaderRegistry } from '../readers/types.js';
import { DEFAULT_FIREFOX_CA, browserStatus } from '../browsers/policies.js';
import { loggerAudit } from '../server/shared/audit.js';
import { MoicaService } from '../services/moica/moica-service.js';
import { NhiService } from '../services/nhi/nhi-service.js';
import { TriesTracker } from '../services/pin/tries-tracker.js';
import type { DaemonConfig } from './config.js';
import { DEFAULT_LISTENERS, type ListenerName } from '../config/listeners.js';


export interface DaemonOptions {
  config: DaemonConfig;
  /** Mock readers with virtual cards and an emulated NHI SAM instead of pcscd and NHI. */
  mock: boolean;
  logger: Logger;
  stateDir?: string;
  /** Mock mode: keep the test PKI (CA and card keys) in this directory, made on first use, so other processes can trust it. */
  testPkiDir?: string;
  /** Origins allowed for this run only (never written); mock mode defaults to the demo site's. */
  extraOrigins?: string[];
}

export interface ListenerStatus {
  name: string;
  url?: string;
  /** Why it is not running, with what to do. */
  error?: string;
}

export interface RunningDaemon {
  stateDir: string;
  registry: ReaderRegistry;
  /** Mock mode only: the readers' remote control and the emulated NHI SAM (its key verifies H_Sign). */
  mock?: { control: MockControl; sam: EmulatedSam };
  /** The TLS material the listeners use (the demo site serves with the same leaf). */
  tls: { key: string; cert: string; ca: string };
  listeners: ListenerStatus[];
  stop(): Promise<void>;
}

/** A function that runs `make` on its first call and returns that same promise ever after. */
function onceFrom<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

function describeHolder(port: number): string {
  const holder = portHolders(port);
  const names = holder.processes.map((p) => `${p.name} (pid ${p.pid})`);
  return names.length > 0 ? `held by ${names.join(', ')}` : 'held by another program';
}

/**
 * Starts everything: readers, services, listeners. A listener whose port is taken is reported
 * by name and the rest still start, so one conflicting program never takes the bridge down.
 */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const { config, logger } = options;
  const stateDir = options.stateDir ?? config.stateDir ?? defaultStateDir();
  const cleanups: (() => Promise<unknown>)[] = [];
  // The certificate check (file reads, a signature and a key check) overlaps the readers' start.
  const certificate = ensureServerCertificate(stateDir);
  certificate.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile

  let registry: ReaderRegistry;
  let control: MockControl | undefined;
  if (options.mock) {
    const pkiDir = options.testPkiDir;
    // Demo and emulator code is loaded only in mock mode: never part of a real daemon's graph.
    const { createDemoReaders } = await import('../demo/demo-readers.js');
    const { loadOrCreateTestPki } = await import('../emulator/moica/test-pki-store.js');
    ({ registry, control } = await createDemoReaders(pkiDir ? onceFrom(() => loadOrCreateTestPki(pkiDir)) : undefined));
  } else {
    const pcsc = new PcscReaderRegistry();
    registry = pcsc;
    try {
      await pcsc.start();
    } catch (e) {
      const error = asCardBridgeError(e);
      logger.error({ code: error.code, hint: error.hint }, error.message);
    }
    if (!pcsc.serviceAvailable) logger.warn({ reason: pcsc.serviceError }, 'pcscd is not reachable yet; readers will appear when it is');
  }
  cleanups.push(() => registry.stop());
  registry.on('event', (event) => logger.info({ event }, `reader event ${event.type}`));

  let samTarget = { host: config.nhiSam.host, port: config.nhiSam.port };
  let sam: EmulatedSam | undefined;
  if (options.mock) {
    const { EmulatedSam } = await import('../emulator/nhi/emulated-sam.js');
    const emulated = await EmulatedSam.start();
    sam = emulated;
    cleanups.push(() => emulated.close());
    samTarget = { host: emulated.host, port: emulated.port };
  }
  const services = {
    nhi: new NhiService(registry, { sam: { ...samTarget, connectTimeoutMs: config.nhiSam.connectTimeoutMs, stepTimeoutMs: config.nhiSam.stepTimeoutMs } }),
    moica: new MoicaService(registry, { tries: TriesTracker.inStateDir(stateDir) }),
  };
  const sites = SitesStore.inStateDir(stateDir, config.allowedOrigins, options.extraOrigins ?? (options.mock ? [(await import('../demo/site/demo-site.js')).DEMO_SITE_ORIGIN] : []), { consentDays: config.consentDays });

  const tls = await certificate;
  if (tls.created) logger.warn({ stateDir }, 'generated a development certificate; run "cardbridge certs trust" so browsers accept it');
  const audit = loggerAudit(logger);
  const rateLimit = { ...config.rateLimit };

  /**
   * Each listener's app, built only when enabled; all of them share the readers, services and
   * allow-list. A listener's server module is imported here, so a disabled one is never loaded.
   */
  const factories: Partial<Record<ListenerName, (port: number) => Promise<FastifyInstance>>> = {
    native: async (port) => {
      const { buildNativeApp } = await import('../server/native/app.js');
      return buildNativeApp({
        registry,
        policy: () => sites.policy('native'),
        port,
        https: { key: tls.key, cert: tls.cert },
        rateLimit,
        logger: logger.child({ listener: 'native' }),
        cards: { services, sites, audit },
        ...(control ? { mockControl: control } : {}),
        selfTest: { browsers: () => browserStatus({ root: '', stateDir, origins: [...sites.allowedOrigins(), ...Object.keys(sites.grants())], caPath: DEFAULT_FIREFOX_CA }) },
      });
    },
    hipki: async (port) => {
      const { buildHipkiApp } = await import('../server/hipki/index.js');
      return buildHipkiApp({ registry, moica: services.moica, sites, audit, port, rateLimit, logger: logger.child({ listener: 'hipki' }) });
    },
    'nhi-ws': async (port) => {
      const { buildNhiWsApp } = await import('../server/nhi/index.js');
      return buildNhiWsApp({ registry, nhi: services.nhi, sites, audit, port, rateLimit, https: { key: tls.key, cert: tls.cert }, logger: logger.child({ listener: 'nhi-ws' }) });
    },
    'nhi-http': async (port) => {
      const { buildNhiHttpApp } = await import('../server/nhi/index.js');
      return buildNhiHttpApp({ registry, nhi: services.nhi, sites, audit, port, rateLimit, logger: logger.child({ listener: 'nhi-http' }) });
    },
    'nhi-https': async (port) => {
      const { buildNhiHttpApp } = await import('../server/nhi/index.js');
      return buildNhiHttpApp({ registry, nhi: services.nhi, sites, audit, port, rateLimit, https: { key: tls.key, cert: tls.cert }, logger: logger.child({ listener: 'nhi-https' }) });
    },
  };

  /** Builds and binds one listener; a failure is reported by name and never stops the others. */
  const startListener = async (spec: (typeof DEFAULT_LISTENERS)[number], build: (port: number) => Promise<FastifyInstance>): Promise<{ status: ListenerStatus; app?: FastifyInstance }> => {
    const { port } = config.listeners[spec.name];
    try {
      const app = await build(port);
      try {
        await app.listen({ port, host: '127.0.0.1' });
      } catch (e) {
        await app.close();
        throw e;
      }
      return { status: { name: spec.name, url: `${spec.scheme}://127.0.0.1:${port}` }, app };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const suspect = 'usualSuspect' in spec ? ` (often ${spec.usualSuspect})` : '';
      const error = code === 'EADDRINUSE' ? `port ${port} is ${describeHolder(port)}${suspect}` : asCardBridgeError(e).message;
      logger.error({ listener: spec.name, port }, `${spec.name} listener not started: ${error}`);
      return { status: { name: spec.name, error } };
    }
  };

  // All listeners are built and bound at once (start-up time is the slowest one, not the sum);
  // the statuses keep DEFAULT_LISTENERS' order.
  const started = await Promise.all(
    DEFAULT_LISTENERS.flatMap((spec) => {
      const build = factories[spec.name];
      return config.listeners[spec.name].enabled && build ? [startListener(spec, build)] : [];
    }),
  );
  const listeners: ListenerStatus[] = started.map((s) => s.status);
  const apps: FastifyInstance[] = started.flatMap((s) => (s.app ? [s.app] : []));
  if (listeners.length > 0 && !listeners.some((l) => l.url)) {
    await Promise.all(cleanups.map((c) => c()));
    throw new CardBridgeError('Unavailable', `No listener could start: ${listeners.map((l) => `${l.name}: ${l.error}`).join('; ')}`, {
      hint: 'Run "cardbridge doctor" to see which program holds the ports.',
    });
  }

  return {
    stateDir,
    registry,
    ...(control && sam ? { mock: { control, sam } } : {}),
    tls: { key: tls.key, cert: tls.cert, ca: tls.ca },
    listeners,
    async stop() {
      await Promise.all(apps.map((a) => a.close()));
      await Promise.all(cleanups.map((c) => c().catch(() => undefined)));
    },
  };
}
