/**
 * cardbridge/testing — run a relying site's browser tests against cardbridge's mock readers.
 *
 *   import { chromium } from 'playwright-core';
 *   import { approve, approvalWindow, startMockBridge } from 'cardbridge/testing';
 *   const bridge = await startMockBridge({ origins: ['http://localhost:3000'] });
 *   const browser = await chromium.launch({ args: bridge.chromiumArgs });
 *   const popup = await approvalWindow(page, () => page.click('#login'));
 *   await approve(popup, { pin: bridge.pin });
 *   // back end: trust bridge.caBundlePem (the test PKI), verify with cardbridge/verify
 *   await bridge.stop();
 *
 * The daemon runs as a child process (`cardbridge serve --mock`) on free ports with its own
 * state directory, so tests never touch the machine's real bridge, ports or trust stores.
 * Playwright's types are described structurally below, so this module works with
 * playwright-core or @playwright/test without depending on either.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The listeners `startMockBridge` can run (the native API is always on). */
export type MockListener = 'native' | 'hipki' | 'nhi-ws' | 'nhi-http' | 'nhi-https';
const ALL_LISTENERS: MockListener[] = ['native', 'hipki', 'nhi-ws', 'nhi-http', 'nhi-https'];

/** Virtual cards a mock reader can hold. */
export type MockCardKind = 'nhi' | 'moica-gen1' | 'moica-gen2';

/** The mock readers and what they hold at start. */
export const MOCK_READERS = { nhi: 'Mock Reader 0', moica: 'Mock Reader 1' } as const;

/** The PIN of the virtual 自然人憑證 cards. */
export const MOCK_MOICA_PIN = '123456';

export interface StartMockBridgeOptions {
  /** Origins of the pages under test (allowed for this daemon only). */
  origins?: string[];
  /** Extra listeners besides the native API, e.g. `['hipki']` for HiPKI-protocol pages. */
  listeners?: MockListener[];
  /** State directory (TLS certificate, allow-list); default a new temporary one, removed by stop(). */
  stateDir?: string;
  /** Where the test PKI lives (see `cardbridge mock pki`); default inside the state directory. */
  pkiDir?: string;
  /** How long the daemon may take to start (default 30 s). */
  startTimeoutMs?: number;
}

export interface MockReaderState {
  name: string;
  card: MockCardKind | null;
  triesLeft?: number;
}

export interface MockBridge {
  /** The native API, e.g. https://127.0.0.1:41234 (what the page passes to `connect({ base })`). */
  url: string;
  /** Every running listener's URL by name. */
  listeners: Partial<Record<MockListener, string>>;
  stateDir: string;
  pkiDir: string;
  /** PIN of the virtual 自然人憑證. */
  pin: string;
  /** Root and issuing CA of the test PKI (PEM): what the relying back end trusts in tests. */
  caBundlePem: string;
  /** Root CA, issuing CA (PEM), and the virtual card holder's (fake) name and ID's last four. */
  pki: { root: string; issuing: string; holder: { name: string; serialNumber: string; idLastFour: string } };
  /**
   * Chromium launch arguments that make the browser accept this daemon's TLS key (and only
   * it): `chromium.launch({ args: bridge.chromiumArgs })`. Every context of that browser,
   * popups included, then trusts the bridge; no certificate store is touched.
   */
  chromiumArgs: string[];
  /** The mock readers, their cards and PIN tries left. */
  state(): Promise<MockReaderState[]>;
  /** Put a virtual card in a reader (default: a generation-2 自然人憑證 in MOCK_READERS.moica). */
  insert(reader?: string, card?: MockCardKind): Promise<void>;
  /** Pull the card out of a reader (default MOCK_READERS.moica). */
  remove(reader?: string): Promise<void>;
  /** Give the virtual 自然人憑證 its PIN tries back (default MOCK_READERS.moica). */
  resetPin(reader?: string): Promise<void>;
  /** Stop the daemon (and remove the temporary state directory it made). */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The installed package's CLI (works from dist/ and from src/ under ts-jest alike). */
function cliPath(): string {
  return fileURLToPath(new URL('../../bin/cardbridge.js', import.meta.url));
}

interface Ready {
  cardbridge: 'ready';
  listeners: Partial<Record<MockListener, string>>;
  failed?: Record<string, string>;
}

function waitForReady(child: ChildProcess, output: string[], timeoutMs: number): Promise<Ready> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`cardbridge serve --mock did not start: ${why}\n${output.join('').slice(-4000)}`));
    };
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output.push(text);
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (!line.includes('"cardbridge":"ready"')) continue;
        cleanup();
        resolve(JSON.parse(line) as Ready);
        return;
      }
    };
    const onExit = (code: number | null) => fail(`it exited (code ${code})`);
    const timer = setTimeout(() => fail(`no ready line within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    child.once('exit', onExit);
  });
}

/** One request to the mock-control API, trusting only the daemon's own CA. */
function call(base: string, ca: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(new URL(path, base), { method, ca, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 400) reject(new Error(`cardbridge ${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(text ? JSON.parse(text) : undefined);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function spkiSha256(pem: string): string {
  const leaf = new X509Certificate(pem);
  return createHash('sha256').update(leaf.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}

/** Starts `cardbridge serve --mock` on free ports with its own state directory; resolves when it is ready. */
export async function startMockBridge(options: StartMockBridgeOptions = {}): Promise<MockBridge> {
  const ownStateDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'cardbridge-mock-'));
  const pkiDir = options.pkiDir ?? join(stateDir, 'test-pki');
  const wanted = new Set<MockListener>(['native', ...(options.listeners ?? [])]);
  for (const l of wanted) if (!ALL_LISTENERS.includes(l)) throw new TypeError(`Unknown listener "${l}" (known: ${ALL_LISTENERS.join(', ')})`);
  const listeners: Record<string, { enabled: boolean; port?: number }> = {};
  for (const name of ALL_LISTENERS) listeners[name] = wanted.has(name) ? { enabled: true, port: await freePort() } : { enabled: false };
  const config = join(stateDir, 'mock-bridge.json');
  writeFileSync(config, JSON.stringify({ logLevel: 'warn', allowedOrigins: options.origins ?? [], listeners }));

  const child = spawn(process.execPath, [cliPath(), 'serve', '--mock', '--config', config, '--state-dir', stateDir, '--pki', pkiDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    if (ownStateDir) rmSync(stateDir, { recursive: true, force: true });
  };
  let ready: Ready;
  try {
    ready = await waitForReady(child, output, options.startTimeoutMs ?? 30_000);
    const notStarted = Object.entries(ready.failed ?? {});
    if (notStarted.length > 0) throw new Error(`cardbridge serve --mock: ${notStarted.map(([n, why]) => `${n}: ${why}`).join('; ')}`);
  } catch (e) {
    await stop();
    throw e;
  }
  // Keep draining output so a chatty daemon never blocks on a full pipe.
  child.stdout!.resume();

  const url = ready.listeners.native!;
  const ca = readFileSync(join(stateDir, 'ca.pem'), 'utf8');
  const pki = (await call(url, ca, 'GET', '/v1/mock/pki')) as MockBridge['pki'] & { caBundlePem: string };
  const reader = (r: string) => `/v1/mock/readers/${encodeURIComponent(r)}`;
  return {
    url,
    listeners: ready.listeners,
    stateDir,
    pkiDir,
    pin: MOCK_MOICA_PIN,
    caBundlePem: pki.caBundlePem,
    pki: { root: pki.root, issuing: pki.issuing, holder: pki.holder },
    chromiumArgs: [`--ignore-certificate-errors-spki-list=${spkiSha256(readFileSync(join(stateDir, 'server.pem'), 'utf8'))}`],
    async state() {
      return ((await call(url, ca, 'GET', '/v1/mock')) as { readers: MockReaderState[] }).readers;
    },
    async insert(r = MOCK_READERS.moica, card = 'moica-gen2') {
      await call(url, ca, 'POST', `${reader(r)}/card`, { card });
    },
    async remove(r = MOCK_READERS.moica) {
      await call(url, ca, 'DELETE', `${reader(r)}/card`);
    },
    async resetPin(r = MOCK_READERS.moica) {
      await call(url, ca, 'POST', `${reader(r)}/card/reset-pin`);
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// cardbridge's window (the popup where the user consents and types the PIN)

/** What these helpers use of a Playwright Page (structural, so any Playwright flavour fits). */
export interface ApprovalWindowPage {
  waitForURL(url: RegExp): Promise<unknown>;
  waitForSelector(selector: string): Promise<unknown>;
  isVisible(selector: string): Promise<boolean>;
  fill(selector: string, value: string): Promise<unknown>;
  click(selector: string): Promise<unknown>;
  check(selector: string): Promise<unknown>;
}

/** A page that opens popups of its own type (Playwright's Page does). */
export interface OpeningPage extends ApprovalWindowPage {
  waitForEvent(event: 'popup'): Promise<unknown>;
}

/**
 * Runs `action` (the click that calls the bridge) and returns cardbridge's window once it
 * shows the request. The window opens synchronously in the click, so start waiting first.
 */
export async function approvalWindow<P extends OpeningPage>(page: P, action: () => Promise<unknown>): Promise<P> {
  const [opened] = await Promise.all([page.waitForEvent('popup'), action()]);
  const popup = opened as P; // a Playwright page's popup is a page of the same kind
  await popup.waitForURL(/\/ui\/approve\//);
  await popup.waitForSelector('#request:not([hidden])');
  return popup;
}

export interface ApproveOptions {
  /** The PIN, for operations that use the 自然人憑證's key; omit for consent-only requests (NHI data). */
  pin?: string;
  /** Tick "I understand this is the last try" when the card has one try left. */
  lastTry?: boolean;
  /** Consent requests: "Allow and remember" (default) or, with false, "This time only". */
  remember?: boolean;
}

/**
 * With several citizen certificate cards in and no reader named by the page, cardbridge's
 * window first lists the cards (holder, masked card number, reader): this picks the one in
 * `reader`, as the user would, and waits for the PIN form of that card.
 */
export async function chooseCard(popup: ApprovalWindowPage, reader: string): Promise<void> {
  await popup.waitForSelector('#chooseform:not([hidden])');
  await popup.check(`#choices input[value="${reader.replace(/["\\]/g, (c) => `\\${c}`)}"]`);
  await popup.click('#choose');
  await popup.waitForSelector('#pinform:not([hidden])');
}

/** Approves the request shown in cardbridge's window, as the user would. */
export async function approve(popup: ApprovalWindowPage, options: ApproveOptions = {}): Promise<void> {
  if (await popup.isVisible('#chooseform')) throw new Error('cardbridge’s window asks which card to use: call chooseCard(popup, reader) first');
  if (await popup.isVisible('#pinform')) {
    if (options.pin === undefined) throw new Error('cardbridge’s window asks for a PIN: pass approve(popup, { pin })');
    if (options.lastTry) await popup.check('#lasttry');
    await popup.fill('#pin', options.pin);
    await popup.click('#sign');
    return;
  }
  await popup.click(options.remember === false ? '#once' : '#allow');
}

/** Refuses the request (Deny, or Cancel on the PIN form): the page gets a Cancelled error. */
export async function deny(popup: ApprovalWindowPage): Promise<void> {
  if (await popup.isVisible('#chooseform')) return void (await popup.click('#choosecancel'));
  await popup.click((await popup.isVisible('#pinform')) ? '#cancel' : '#deny');
}
