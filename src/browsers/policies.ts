import { existsSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CardBridgeError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { SYSTEM_STORE_DIR, SYSTEM_STORE_FILE } from '../certs/trust.js';

/**
 * Managed browser policies that let citizens' browsers reach cardbridge (Linux):
 *
 * - Chromium family (Chrome, Chromium, Edge): since Chrome 142 a public https page must ask the
 *   user before it loads anything from a loopback address (147+: WebSockets too). A managed
 *   `LocalNetworkAccessAllowedForUrls` lifts that for the sites cardbridge allows. cardbridge
 *   owns one file per browser, `<managed dir>/cardbridge.json`, and nothing else there.
 * - Firefox: an enterprise `policies.json` whose `Certificates.Install` names the local CA, so
 *   Firefox trusts it without touching profiles. That file is shared with the administrator:
 *   cardbridge adds and removes only its own entry.
 *
 * Every path is under `root` (tests and packaging use a throw-away tree). What `allow` created
 * (files, directories, the Firefox entry) is written down in the state directory so `remove`
 * takes away exactly that.
 */

export type BrowserId = 'chrome' | 'chromium' | 'edge' | 'firefox';
export type PolicyState = 'not-installed' | 'missing' | 'ok' | 'stale' | 'invalid';

interface BrowserSpec {
  id: BrowserId;
  name: string;
  /** Any of these existing means the browser is installed. */
  executables: string[];
  /** The file cardbridge writes (Chromium family) or shares (Firefox). */
  policyFile: string;
}

export const CHROMIUM_POLICY_FILE = 'cardbridge.json';
export const LNA_POLICY = 'LocalNetworkAccessAllowedForUrls';

export const BROWSERS: readonly BrowserSpec[] = [
  {
    id: 'chrome',
    name: 'Google Chrome',
    executables: ['/opt/google/chrome/chrome', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'],
    policyFile: `/etc/opt/chrome/policies/managed/${CHROMIUM_POLICY_FILE}`,
  },
  {
    id: 'chromium',
    name: 'Chromium',
    executables: ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'],
    policyFile: `/etc/chromium/policies/managed/${CHROMIUM_POLICY_FILE}`,
  },
  {
    id: 'edge',
    name: 'Microsoft Edge',
    executables: ['/opt/microsoft/msedge/msedge', '/usr/bin/microsoft-edge', '/usr/bin/microsoft-edge-stable'],
    policyFile: `/etc/opt/edge/policies/managed/${CHROMIUM_POLICY_FILE}`,
  },
  {
    id: 'firefox',
    name: 'Firefox',
    executables: ['/usr/bin/firefox', '/usr/bin/firefox-esr', '/usr/lib/firefox/firefox', '/usr/lib/firefox-esr/firefox-esr'],
    // Firefox on Linux reads /etc/<application name>/policies/policies.json; ESR is "firefox" too.
    policyFile: '/etc/firefox/policies/policies.json',
  },
];

/** The CA file Firefox is told to install: the system store copy, readable by every user. */
export const DEFAULT_FIREFOX_CA = join(SYSTEM_STORE_DIR, SYSTEM_STORE_FILE);
export const LEDGER_FILE = 'browser-policies.json';
export const BROWSERS_ROOT_ENV = 'CARDBRIDGE_BROWSERS_ROOT';

export interface BrowserEnvironment {
  /** Prefix of every system path ('' or '/' for the real system). */
  root: string;
  /** Where the ledger of what `allow` created is kept. */
  stateDir: string;
  /** cardbridge's allowed origin patterns (SitesStore.allowedOrigins()). */
  origins: readonly string[];
  /** The CA path as Firefox sees it (not prefixed by root). */
  caPath: string;
}

export interface BrowserPolicyStatus {
  id: BrowserId;
  name: string;
  installed: boolean;
  /** The policy file as the browser sees it. */
  file: string;
  state: PolicyState;
  detail: string;
}

export interface BrowserChange {
  id: BrowserId;
  name: string;
  file: string;
  action: 'written' | 'unchanged' | 'removed' | 'absent';
}

interface Ledger {
  /** Paths (as the browser sees them) that did not exist before `allow` made them. */
  created: string[];
  /** Firefox entries cardbridge added to Certificates.Install. */
  firefoxInstall: string[];
}

const onDisk = (env: BrowserEnvironment, path: string) => join(env.root || '/', path);

/**
 * `https://*.gov.tw` → `https://[*.]gov.tw` (Chromium's enterprise URL pattern). Chromium's
 * pattern also matches gov.tw itself, which cardbridge's does not: the policy only lifts the
 * browser's prompt; cardbridge's own allow-list still decides.
 */
export function chromiumUrlPattern(origin: string): string {
  return origin.replace(/^(https?:\/\/)\*\./i, '$1[*.]');
}

function expectedChromium(env: BrowserEnvironment): string[] {
  return [...new Set(env.origins.map(chromiumUrlPattern))];
}

function installed(env: BrowserEnvironment, spec: BrowserSpec): boolean {
  return spec.executables.some((p) => existsSync(onDisk(env, p)));
}

function readJson(path: string): { exists: false } | { exists: true; json: unknown } | { exists: true; error: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false };
    return { exists: true, error: (e as Error).message };
  }
  try {
    return { exists: true, json: JSON.parse(text) };
  } catch (e) {
    return { exists: true, error: `not valid JSON: ${(e as Error).message}` };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameSet(a: readonly unknown[], b: readonly string[]): boolean {
  return a.length === b.length && b.every((x) => a.includes(x));
}

function chromiumStatus(env: BrowserEnvironment, spec: BrowserSpec): Pick<BrowserPolicyStatus, 'state' | 'detail'> {
  const found = readJson(onDisk(env, spec.policyFile));
  if (!found.exists) return { state: 'missing', detail: `no ${spec.policyFile}: public sites must ask before reaching cardbridge` };
  if ('error' in found) return { state: 'invalid', detail: `${spec.policyFile}: ${found.error}` };
  const list = isRecord(found.json) ? found.json[LNA_POLICY] : undefined;
  const expected = expectedChromium(env);
  if (Array.isArray(list) && sameSet(list, expected)) return { state: 'ok', detail: `${spec.policyFile} allows ${expected.join(', ') || '(no site)'}` };
  return { state: 'stale', detail: `${spec.policyFile} does not match the allowed sites (${expected.join(', ') || 'none'})` };
}

function firefoxStatus(env: BrowserEnvironment, spec: BrowserSpec): Pick<BrowserPolicyStatus, 'state' | 'detail'> {
  const found = readJson(onDisk(env, spec.policyFile));
  if (!found.exists) return { state: 'missing', detail: `no ${spec.policyFile}: Firefox does not trust cardbridge's local CA` };
  if ('error' in found) return { state: 'invalid', detail: `${spec.policyFile}: ${found.error}` };
  const install = firefoxInstallList(found.json);
  if (!install?.includes(env.caPath)) return { state: 'missing', detail: `${spec.policyFile} does not install ${env.caPath}` };
  if (!existsSync(onDisk(env, env.caPath))) return { state: 'stale', detail: `${spec.policyFile} installs ${env.caPath}, which does not exist (run "sudo cardbridge certs trust")` };
  return { state: 'ok', detail: `${spec.policyFile} installs ${env.caPath}` };
}

function firefoxInstallList(json: unknown): unknown[] | undefined {
  if (!isRecord(json) || !isRecord(json.policies) || !isRecord(json.policies.Certificates)) return undefined;
  const install = json.policies.Certificates.Install;
  return Array.isArray(install) ? install : undefined;
}

export async function browserStatus(env: BrowserEnvironment): Promise<BrowserPolicyStatus[]> {
  return BROWSERS.map((spec) => {
    const base = { id: spec.id, name: spec.name, file: spec.policyFile };
    if (!installed(env, spec)) return { ...base, installed: false, state: 'not-installed' as const, detail: 'not installed' };
    return { ...base, installed: true, ...(spec.id === 'firefox' ? firefoxStatus(env, spec) : chromiumStatus(env, spec)) };
  });
}

// ——— the ledger ———

function ledgerPath(env: BrowserEnvironment): string {
  return join(env.stateDir, LEDGER_FILE);
}

function readLedger(env: BrowserEnvironment): Ledger {
  const found = readJson(ledgerPath(env));
  if (found.exists && 'json' in found && isRecord(found.json)) {
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    return { created: strings(found.json.created), firefoxInstall: strings(found.json.firefoxInstall) };
  }
  return { created: [], firefoxInstall: [] };
}

async function writeLedger(env: BrowserEnvironment, ledger: Ledger): Promise<void> {
  if (ledger.created.length === 0 && ledger.firefoxInstall.length === 0) {
    await rm(ledgerPath(env), { force: true });
    return;
  }
  await mkdir(env.stateDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(ledgerPath(env), `${JSON.stringify(ledger, null, 2)}\n`, 0o600);
}

/** mkdir -p that writes down each directory it had to create. */
async function makeDirectory(env: BrowserEnvironment, ledger: Ledger, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; d !== '/' && !existsSync(onDisk(env, d)); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    await mkdir(onDisk(env, d), { mode: 0o755 });
    if (!ledger.created.includes(d)) ledger.created.push(d);
  }
}

async function writeOwned(env: BrowserEnvironment, ledger: Ledger, file: string, text: string): Promise<'written' | 'unchanged'> {
  const path = onDisk(env, file);
  const before = await readFile(path, 'utf8').catch(() => undefined);
  if (before === text) return 'unchanged';
  await makeDirectory(env, ledger, dirname(file));
  if (before === undefined && !ledger.created.includes(file)) ledger.created.push(file);
  await writeFileAtomic(path, text, 0o644);
  return 'written';
}

function chromiumText(env: BrowserEnvironment): string {
  return `${JSON.stringify({ [LNA_POLICY]: expectedChromium(env) }, null, 2)}\n`;
}

function firefoxText(env: BrowserEnvironment, spec: BrowserSpec): string {
  const found = readJson(onDisk(env, spec.policyFile));
  if (found.exists && 'error' in found) {
    throw new CardBridgeError('InvalidInput', `${spec.policyFile}: ${found.error}`, { hint: `Fix ${spec.policyFile} by hand; cardbridge does not overwrite a policies.json it cannot read.` });
  }
  const json = found.exists && 'json' in found && isRecord(found.json) ? structuredClone(found.json) : {};
  const policies = isRecord(json.policies) ? json.policies : (json.policies = {});
  const certificates = isRecord(policies.Certificates) ? policies.Certificates : (policies.Certificates = {});
  const install = Array.isArray(certificates.Install) ? certificates.Install : (certificates.Install = []);
  if (!install.includes(env.caPath)) install.push(env.caPath);
  return `${JSON.stringify(json, null, 2)}\n`;
}

function selected(env: BrowserEnvironment, only?: readonly BrowserId[]): BrowserSpec[] {
  return BROWSERS.filter((spec) => (only ? only.includes(spec.id) : installed(env, spec)));
}

/** Writes the policies of the installed browsers (or of `only`, installed or not). */
export async function allowBrowsers(env: BrowserEnvironment, only?: readonly BrowserId[]): Promise<BrowserChange[]> {
  const ledger = readLedger(env);
  const changes: BrowserChange[] = [];
  try {
    for (const spec of selected(env, only)) {
      const base = { id: spec.id, name: spec.name, file: spec.policyFile };
      if (spec.id === 'firefox') {
        const before = readJson(onDisk(env, spec.policyFile));
        const hadEntry = before.exists && 'json' in before && Boolean(firefoxInstallList(before.json)?.includes(env.caPath));
        const action = await writeOwned(env, ledger, spec.policyFile, firefoxText(env, spec));
        if (!hadEntry && !ledger.firefoxInstall.includes(env.caPath)) ledger.firefoxInstall.push(env.caPath);
        changes.push({ ...base, action });
      } else {
        changes.push({ ...base, action: await writeOwned(env, ledger, spec.policyFile, chromiumText(env)) });
      }
    }
  } finally {
    await writeLedger(env, ledger);
  }
  return changes;
}

/** Rewrites the Chromium-family files that already exist (after the allow-list changed). */
export async function resyncBrowsers(env: BrowserEnvironment): Promise<BrowserChange[]> {
  const present = BROWSERS.filter((spec) => spec.id !== 'firefox' && existsSync(onDisk(env, spec.policyFile))).map((spec) => spec.id);
  return present.length ? allowBrowsers(env, present) : [];
}

function removeEmptyDirectory(path: string): void {
  try {
    if (statSync(path).isDirectory()) rmdirSync(path);
  } catch {
    // not empty (someone else's files) or already gone: keep it
  }
}

/**
 * Takes away cardbridge's policy files, its Firefox entry and the directories `allow` created
 * (of every browser, installed or not, or of `only`).
 */
export async function removeBrowsers(env: BrowserEnvironment, only?: readonly BrowserId[]): Promise<BrowserChange[]> {
  const ledger = readLedger(env);
  const changes: BrowserChange[] = [];
  for (const spec of BROWSERS.filter((b) => !only || only.includes(b.id))) {
    const base = { id: spec.id, name: spec.name, file: spec.policyFile };
    const path = onDisk(env, spec.policyFile);
    if (spec.id !== 'firefox') {
      const had = existsSync(path);
      await rm(path, { force: true });
      changes.push({ ...base, action: had ? 'removed' : 'absent' });
      continue;
    }
    const found = readJson(path);
    const ours = new Set([env.caPath, ...ledger.firefoxInstall]);
    const install = found.exists && 'json' in found ? firefoxInstallList(found.json) : undefined;
    if (!install || !install.some((x) => typeof x === 'string' && ours.has(x))) {
      changes.push({ ...base, action: 'absent' });
      continue;
    }
    const json = structuredClone((found as { json: Record<string, Record<string, Record<string, unknown>>> }).json);
    const certificates = json.policies!.Certificates!;
    const kept = install.filter((x) => !(typeof x === 'string' && ours.has(x)));
    if (kept.length) certificates.Install = kept;
    else delete certificates.Install;
    if (Object.keys(certificates).length === 0) delete json.policies!.Certificates;
    const emptied = Object.keys(json.policies!).length === 0 && Object.keys(json).length === 1;
    if (emptied && ledger.created.includes(spec.policyFile)) await rm(path, { force: true });
    else await writeFileAtomic(path, `${JSON.stringify(json, null, 2)}\n`, statSync(path).mode & 0o777);
    changes.push({ ...base, action: 'removed' });
  }
  // Directories allow created, deepest first, if nothing else was put in them since.
  for (const created of [...ledger.created].sort((a, b) => b.length - a.length)) {
    if (!existsSync(onDisk(env, created))) continue;
    removeEmptyDirectory(onDisk(env, created));
  }
  await writeLedger(env, { created: [], firefoxInstall: [] });
  return changes;
}
