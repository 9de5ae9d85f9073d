import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { isCardBridgeError } from '../errors.js';
import { CARD_PROFILES } from '../cards/index.js';
import { PCSC_INSTALL_HINT, PcscReaderRegistry } from '../readers/pcsc-registry.js';
import type { ReaderState } from '../readers/types.js';
import { DEFAULT_ALLOWED_ORIGINS, SITES_FILE, SitesStore } from '../config/sites-store.js';
import { RENEW_WITHIN_DAYS, readCertificateState } from '../certs/store.js';
import { defaultStateDir } from '../config/paths.js';
import { type TrustEnvironment, defaultTrustEnvironment, trustStatus } from '../certs/trust.js';
import { type ProcessInfo, canListen, portHolders } from './ports.js';
import { DEFAULT_LISTENERS, type ListenerSpec } from '../config/listeners.js';
import { NHI_SAM_DEFAULT_HOST, NHI_SAM_DEFAULT_PORT, SamClientError, type SamClientOptions, checkSamHealth } from '../remote/nhi-sam/sam-client.js';
import { DEFAULT_CONFIG, type DaemonConfig, loadConfig } from '../daemon/config.js';
import { type BrowserEnvironment, DEFAULT_FIREFOX_CA, browserStatus } from '../browsers/policies.js';

export { DEFAULT_LISTENERS, type ListenerSpec }; // re-exported for doctor's callers

/**
 * `cardbridge doctor`: everything between a web page and a card that can be wrong on this
 * machine, each with its fix. Every input (registry, ports, /proc, files, stores) is
 * injectable so tests can stage each failure.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface Check {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** What to do, for warn and fail. */
  fix?: string;
}



export const NHI_HOSTNAME = 'iccert.nhi.gov.tw';
export const HOSTS_MARKER = '# cardbridge-managed';
export const HOSTS_LINE = `127.0.0.1 ${NHI_HOSTNAME} ${HOSTS_MARKER}`;

/** The part of a reader registry doctor needs (the PC/SC registry, or a fake in tests). */
export interface DoctorRegistry {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly serviceAvailable: boolean;
  readonly serviceError?: string | undefined;
  readers(): ReaderState[];
}

export interface DoctorOptions {
  /** Creates (does not start) the registry; default: real PC/SC. May throw (addon missing). */
  registry?: () => DoctorRegistry;
  /** The configuration file to check and take the state directory and listeners from (undefined: built-in defaults). */
  configFile?: string | undefined;
  /** Overrides the configuration's listeners (tests). */
  listeners?: readonly ListenerSpec[];
  procRoot?: string;
  stateDir?: string;
  trust?: TrustEnvironment;
  hostsFile?: string;
  /** Tells our own daemon from other programs holding a port. */
  isCardbridge?: (process: ProcessInfo) => boolean;
  now?: Date;
  /**
   * Where NHI's cloud SAM is: when given, doctor runs the plain health check against it (a
   * network check, so it is opt-in here; the CLI passes the configured SAM).
   */
  sam?: SamClientOptions;
  /** Where browsers and their policies are looked for; default the real system and the sites in stateDir. */
  browsers?: BrowserEnvironment;
}

export interface DoctorReport {
  ok: boolean;
  /** The configuration file read, or null when none exists and the defaults applied. */
  configFile: string | null;
  /** The state directory checked (certificates, allow-list). */
  stateDir: string;
  checks: Check[];
}

/** A process is ours when it runs the cardbridge CLI (bin/cardbridge.js or an installed `cardbridge`). */
export function isCardbridgeProcess(p: ProcessInfo): boolean {
  return p.name === 'cardbridge' || p.argv.some((a) => basename(a) === 'cardbridge' || basename(a) === 'cardbridge.js');
}

const PCSCD_FIX = 'Start it: "sudo systemctl enable --now pcscd.socket" (install with "sudo apt-get install pcscd" if missing).';

async function readerChecks(create: () => DoctorRegistry): Promise<Check[]> {
  let registry: DoctorRegistry;
  try {
    registry = create();
    await registry.start();
  } catch (e) {
    const missing = isCardBridgeError(e, 'Unavailable');
    return [
      {
        id: 'pcsc',
        title: 'PC/SC service (pcscd)',
        status: 'fail',
        detail: missing ? 'the pcsclite addon is not installed, so real readers cannot be used' : `cannot use PC/SC: ${(e as Error).message}`,
        fix: missing ? PCSC_INSTALL_HINT : PCSCD_FIX,
      },
    ];
  }
  try {
    if (!registry.serviceAvailable) {
      return [
        {
          id: 'pcsc',
          title: 'PC/SC service (pcscd)',
          status: 'fail',
          detail: `pcscd is not reachable${registry.serviceError ? `: ${registry.serviceError}` : ''}`,
          fix: PCSCD_FIX,
        },
      ];
    }
    const checks: Check[] = [{ id: 'pcsc', title: 'PC/SC service (pcscd)', status: 'ok', detail: 'pcscd is reachable' }];
    const readers = registry.readers();
    if (readers.length === 0) {
      checks.push({
        id: 'readers',
        title: 'Card readers',
        status: 'fail',
        detail: 'no card reader found',
        fix: 'Plug in the reader. If it still does not show: check "lsusb", install the CCID driver ("sudo apt-get install libccid") or the vendor\'s driver, and run "sudo systemctl restart pcscd".',
      });
      return checks;
    }
    for (const r of readers) {
      const id = `reader:${r.name}`;
      if (!r.card) checks.push({ id, title: `Reader ${r.name}`, status: 'info', detail: 'no card inserted' });
      else if (r.card.type.kind === 'unknown')
        checks.push({
          id,
          title: `Reader ${r.name}`,
          status: 'warn',
          detail: `a card is inserted but not recognised (ATR ${r.card.atr})`,
          fix: `Insert ${CARD_PROFILES.map((p) => `a ${p.label}`).join(' or ')} chip first, contacts up; clean the contacts; another program may hold it exclusively (close the vendor utilities).`,
        });
      else
        checks.push({
          id,
          title: `Reader ${r.name}`,
          status: 'ok',
          detail: `${r.card.label} inserted`,
        });
    }
    if (!readers.some((r) => r.card)) checks.push({ id: 'cards', title: 'Cards', status: 'info', detail: 'insert a card to check that it is recognised' });
    return checks;
  } finally {
    await registry.stop().catch(() => undefined);
  }
}

function describeHolder(p: ProcessInfo): string {
  const command = p.commandLine.length > 80 ? `${p.commandLine.slice(0, 77)}...` : p.commandLine;
  return `${p.name} (pid ${p.pid}${command ? `: ${command}` : ''})`;
}

async function listenerChecks(listeners: readonly ListenerSpec[], procRoot: string, ours: (p: ProcessInfo) => boolean): Promise<Check[]> {
  const haveProc = existsSync(`${procRoot}/net/tcp`);
  const checks: Check[] = [];
  for (const l of listeners) {
    const id = `port:${l.name}`;
    const title = `Listener ${l.name} (${l.scheme}://127.0.0.1:${l.port})`;
    const fix =
      `Stop the program holding port ${l.port}` +
      (l.usualSuspect ? ` — usually ${l.usualSuspect}: quit it and disable its autostart, or uninstall it` : '') +
      `, or disable cardbridge's ${l.name} listener in its configuration. See docs/operations.md ("vendor agent holding ports").`;
    if (!haveProc) {
      const free = await canListen(l.port);
      checks.push(free ? { id, title, status: 'ok', detail: 'port is free' } : { id, title, status: 'fail', detail: 'port is in use (owner unknown on this platform)', fix });
      continue;
    }
    const { sockets, processes } = portHolders(l.port, procRoot);
    if (sockets.length === 0) {
      checks.push({ id, title, status: 'ok', detail: 'port is free' });
      continue;
    }
    const others = processes.filter((p) => !ours(p));
    if (processes.length > 0 && others.length === 0) {
      checks.push({ id, title, status: 'ok', detail: `cardbridge is listening (pid ${processes.map((p) => p.pid).join(', ')})` });
    } else if (others.length > 0) {
      checks.push({ id, title, status: 'fail', detail: `port is held by another program: ${others.map(describeHolder).join('; ')}`, fix });
    } else {
      checks.push({
        id,
        title,
        status: 'fail',
        detail: `port is in use by a process of uid ${sockets[0]!.uid} that this user cannot see`,
        fix: `Run "sudo cardbridge doctor" to name it. ${fix}`,
      });
    }
  }
  return checks;
}

async function certificateChecks(stateDir: string, trust: TrustEnvironment, now: Date): Promise<Check[]> {
  const title = 'Server certificate';
  let state;
  try {
    state = await readCertificateState(stateDir, now);
  } catch (e) {
    return [
      {
        id: 'certificate',
        title,
        status: 'fail',
        detail: (e as Error).message,
        fix: isCardBridgeError(e) && e.hint ? `${e.hint} Then "sudo cardbridge certs trust".` : 'Run "sudo cardbridge certs init" then "sudo cardbridge certs trust".',
      },
    ];
  }
  const checks: Check[] = [];
  const days = state.leaf.daysLeft;
  if (state.problems.length) {
    checks.push({ id: 'certificate', title, status: 'fail', detail: state.problems.join('; '), fix: 'Run "sudo cardbridge certs renew".' });
  } else if (days < RENEW_WITHIN_DAYS) {
    checks.push({ id: 'certificate', title, status: 'warn', detail: `expires in ${days} days (${state.leaf.notAfter.toISOString().slice(0, 10)})`, fix: 'Run "sudo cardbridge certs renew".' });
  } else {
    checks.push({ id: 'certificate', title, status: 'ok', detail: `valid until ${state.leaf.notAfter.toISOString().slice(0, 10)} (${days} days), names ${[...state.leaf.dnsNames, ...state.leaf.ipAddresses].join(', ')}` });
  }
  for (const store of await trustStatus(state.ca.pem, trust)) {
    const missingDb = !store.ok && /does not exist yet/.test(store.detail);
    checks.push({
      id: `trust:${store.kind}:${store.location}`,
      title: store.kind === 'system' ? 'CA trusted by the system store' : store.kind === 'firefox' ? 'CA trusted by Firefox' : 'CA trusted by Chrome/Chromium (NSS)',
      status: store.ok ? 'ok' : missingDb ? 'warn' : 'fail',
      detail: store.detail,
      ...(store.ok ? {} : { fix: store.hint ?? 'Run "sudo cardbridge certs trust".' }),
    });
  }
  return checks;
}

function hostsCheck(hostsFile: string): Check {
  const title = `Hosts entry for ${NHI_HOSTNAME}`;
  const fix = `Add the line "${HOSTS_LINE}" to ${hostsFile} (the Debian package and scripts/install.sh add it), so NHI pages reach the local nhi-ws listener.`;
  let text: string;
  try {
    text = readFileSync(hostsFile, 'utf8');
  } catch (e) {
    return { id: 'hosts', title, status: 'fail', detail: `cannot read ${hostsFile}: ${(e as Error).message}`, fix };
  }
  for (const raw of text.split('\n')) {
    const [address, ...names] = raw.replace(/#.*$/, '').trim().split(/\s+/);
    if (!address || !names.includes(NHI_HOSTNAME)) continue;
    if (address === '127.0.0.1' || address === '::1') return { id: 'hosts', title, status: 'ok', detail: `${NHI_HOSTNAME} → ${address} (${hostsFile})` };
    return { id: 'hosts', title, status: 'fail', detail: `${hostsFile} sends ${NHI_HOSTNAME} to ${address}, not to this machine`, fix: `Change that line to "${HOSTS_LINE}".` };
  }
  return { id: 'hosts', title, status: 'fail', detail: `${hostsFile} has no entry for ${NHI_HOSTNAME}`, fix };
}

function allowListCheck(stateDir: string): Check {
  const title = 'Origin allow-list';
  const store = SitesStore.inStateDir(stateDir);
  try {
    accessSync(stateDir, constants.R_OK | constants.X_OK);
  } catch {
    return { id: 'allow-list', title, status: 'info', detail: `cannot read ${stateDir} as this user; run "sudo cardbridge doctor" to check ${SITES_FILE}` };
  }
  if (!existsSync(store.path)) {
    return { id: 'allow-list', title, status: 'info', detail: `no ${store.path} yet: the default allow-list (${DEFAULT_ALLOWED_ORIGINS.join(', ')}) applies` };
  }
  try {
    const origins = store.allowedOrigins();
    const insecure = origins.filter((o) => o.startsWith('http:'));
    return {
      id: 'allow-list',
      title,
      status: insecure.length ? 'warn' : 'ok',
      detail: `${origins.length} allowed origin pattern(s) in ${store.path}: ${origins.join(', ') || '(none: every site is refused)'}`,
      ...(insecure.length ? { fix: `Remove plain-http origins (${insecure.join(', ')}) outside development.` } : {}),
    };
  } catch (e) {
    return { id: 'allow-list', title, status: 'fail', detail: (e as Error).message, fix: isCardBridgeError(e) && e.hint ? e.hint : `Fix or delete ${store.path}.` };
  }
}

/** One check per installed browser: may the allowed sites reach cardbridge (Chromium family), does it trust the CA (Firefox)? */
async function browserChecks(env: BrowserEnvironment): Promise<Check[]> {
  const installed = (await browserStatus(env)).filter((b) => b.installed);
  if (installed.length === 0) return [{ id: 'browsers', title: 'Browser policies', status: 'info', detail: 'no supported browser (Chrome, Chromium, Edge, Firefox) found' }];
  return installed.map((b) => ({
    id: `browser:${b.id}`,
    title: `${b.name}: ${b.id === 'firefox' ? 'trusts the local CA (policies.json)' : 'Local Network Access policy'}`,
    status: b.state === 'ok' ? 'ok' : b.state === 'invalid' ? 'fail' : 'warn',
    detail: b.detail,
    ...(b.state === 'ok'
      ? {}
      : { fix: b.state === 'invalid' ? `Fix ${b.file} by hand, then run "sudo cardbridge browsers allow".` : 'Run "sudo cardbridge browsers allow", then restart the browser.' }),
  }));
}

function defaultBrowserEnvironment(stateDir: string): BrowserEnvironment {
  let origins: string[] = [...DEFAULT_ALLOWED_ORIGINS];
  try {
    origins = SitesStore.inStateDir(stateDir).allowedOrigins();
  } catch {
    // unreadable sites.json: the allow-list check says so; compare with the defaults
  }
  return { root: process.env.CARDBRIDGE_BROWSERS_ROOT ?? '', stateDir, origins, caPath: DEFAULT_FIREFOX_CA };
}

/**
 * Can this machine reach NHI's cloud SAM, which every 健保卡 web login (H_Sign) needs? The
 * community agent's plain `77<E>` health check on a connection of its own; a login never runs
 * it and never fails because of it. The SAM is remote, so a problem is a warning, not a failure
 * of this machine's set-up.
 */
export async function samCheck(sam: SamClientOptions): Promise<Check> {
  const target = `${sam.host ?? NHI_SAM_DEFAULT_HOST}:${sam.port ?? NHI_SAM_DEFAULT_PORT}`;
  const title = `NHI card authentication service (健保卡雲端驗證, ${target})`;
  const network = `健保卡 web logins need outbound raw TCP (not TLS) to ${target}: check the network, firewall or proxy.`;
  try {
    const health = await checkSamHealth(sam);
    if (health.ok) return { id: 'nhi-sam', title, status: 'ok', detail: `reachable; the handshake and the plain health check passed (${health.elapsedMs} ms)` };
    return {
      id: 'nhi-sam',
      title,
      status: 'warn',
      detail: `reachable, but the health check was answered "${health.answer ?? ''}" instead of "04<rc=2>OK<E>"`,
      fix: 'The service may be down or have changed; try a 健保卡 login, and report the answer if logins fail.',
    };
  } catch (e) {
    const unreachable = e instanceof SamClientError && e.step === 'connect';
    return {
      id: 'nhi-sam',
      title,
      status: 'warn',
      detail: unreachable ? `not reachable: ${(e as Error).message}` : `the health check failed: ${(e as Error).message}`,
      fix: unreachable ? network : `${network} If the network is fine, the service may be down.`,
    };
  }
}

/** The configuration as the daemon would read it; a bad file is a failed check and the defaults stand in. */
function configCheck(file: string | undefined): { config: DaemonConfig; check: Check } {
  const title = 'Configuration';
  if (!file) return { config: structuredClone(DEFAULT_CONFIG), check: { id: 'config', title, status: 'info', detail: 'no configuration file: the built-in defaults apply (docs/configuration.md)' } };
  try {
    return { config: loadConfig(file), check: { id: 'config', title, status: 'ok', detail: `${file} is valid` } };
  } catch (e) {
    return {
      config: structuredClone(DEFAULT_CONFIG),
      check: { id: 'config', title, status: 'fail', detail: (e as Error).message, fix: `Correct that setting in ${file}; docs/configuration.md lists every setting. The daemon will not start until it is fixed.` },
    };
  }
}

/** The listeners a daemon with this configuration runs: enabled ones, on their configured ports. */
function configuredListeners(config: DaemonConfig): ListenerSpec[] {
  return DEFAULT_LISTENERS.filter((l) => config.listeners[l.name].enabled).map((l) => ({ ...l, port: config.listeners[l.name].port }));
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const { config, check: configStatus } = configCheck(options.configFile);
  const stateDir = options.stateDir ?? config.stateDir ?? defaultStateDir();
  const checks: Check[] = [
    configStatus,
    ...(await readerChecks(options.registry ?? (() => new PcscReaderRegistry({ reconnectIntervalMs: 60_000 })))),
    ...(await listenerChecks(options.listeners ?? configuredListeners(config), options.procRoot ?? '/proc', options.isCardbridge ?? isCardbridgeProcess)),
    ...(await certificateChecks(stateDir, options.trust ?? defaultTrustEnvironment(), options.now ?? new Date())),
    hostsCheck(options.hostsFile ?? '/etc/hosts'),
    allowListCheck(stateDir),
    ...(await browserChecks(options.browsers ?? defaultBrowserEnvironment(stateDir))),
    ...(options.sam ? [await samCheck(options.sam)] : []),
  ];
  return { ok: checks.every((c) => c.status !== 'fail'), configFile: options.configFile ?? null, stateDir, checks };
}
