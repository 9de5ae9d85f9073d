import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { lchown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { CA_NICKNAME, pemBlocks } from './local-ca.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * Installing the local CA where browsers and tools look for trust anchors on Linux: the
 * system store (Debian's /usr/local/share/ca-certificates + update-ca-certificates) and NSS
 * databases (Chrome/Chromium's ~/.pki/nssdb, Firefox profiles). Every location is injectable
 * so tests work in throw-away directories and never touch the machine's real stores.
 */

export const SYSTEM_STORE_DIR = '/usr/local/share/ca-certificates';
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Debian's update-ca-certificates hooks (Java's keystore, …): told of each added or removed certificate. */
export const UPDATE_HOOKS_DIR = '/etc/ca-certificates/update.d';
/** update-ca-certificates only picks up files ending in .crt. */
export const SYSTEM_STORE_FILE = 'cardbridge-local-ca.crt';

export const CERTUTIL_HINT =
  'Install the NSS tools: "sudo apt-get install libnss3-tools" (Debian/Ubuntu), "sudo dnf install nss-tools" (Fedora/RHEL), "sudo pacman -S nss" (Arch).';

export const MACOS_TRUST_STEPS = [
  'sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.pem',
  '(remove: sudo security delete-certificate -c "cardbridge local CA" /Library/Keychains/System.keychain)',
];
export const WINDOWS_TRUST_STEPS = [
  'certutil -addstore Root ca.pem   (in an administrator command prompt)',
  '(remove: certutil -delstore Root "cardbridge local CA")',
];

export interface TrustEnvironment {
  /** Directory of the system store, or null to leave the system store alone. */
  systemStoreDir: string | null;
  /** The command that rebuilds the system bundle, or null (e.g. a custom store directory). */
  updateCommand: string[] | null;
  /** The bundle that update-ca-certificates builds, to tell whether the CA really is in it. */
  systemBundle: string | null;
  /** update-ca-certificates' hooks, told when the CA goes away (default: Debian's, for the default store). */
  updateHooksDir?: string | null;
  /** Home directories whose NSS databases (Chrome and Firefox) get the CA. */
  homes: string[];
  /** Path of certutil, or null when it is not installed. */
  certutil: string | null;
}

export type StoreKind = 'system' | 'nss' | 'firefox';

export interface StoreResult {
  kind: StoreKind;
  location: string;
  ok: boolean;
  /** What happened or what was found, in a few words. */
  detail: string;
  hint?: string;
}

/** An executable on PATH, like `command -v`. */
export function which(command: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The home directory of a user from /etc/passwd (getent would also see LDAP users; fine for sudo). */
export function homeOf(user: string, passwd = '/etc/passwd'): string | undefined {
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0] === user && fields[5]) return fields[5];
    }
  } catch {
    // no passwd file: nothing to add
  }
  return undefined;
}

/**
 * The machine's defaults: the system store when it exists (with update-ca-certificates), and
 * the NSS databases of $HOME and of the user who ran sudo ("the invoking user and root").
 */
export function defaultTrustEnvironment(env: NodeJS.ProcessEnv = process.env, overrides: Partial<TrustEnvironment> = {}): TrustEnvironment {
  const homes = new Set<string>([env.HOME || homedir()]);
  if (env.SUDO_USER && env.SUDO_USER !== 'root') {
    const home = homeOf(env.SUDO_USER);
    if (home) homes.add(home);
  }
  const update = which('update-ca-certificates', env.PATH ?? '') ?? (existsSync('/usr/sbin/update-ca-certificates') ? '/usr/sbin/update-ca-certificates' : null);
  const systemStoreDir = overrides.systemStoreDir === undefined ? (existsSync(SYSTEM_STORE_DIR) || update ? SYSTEM_STORE_DIR : null) : overrides.systemStoreDir;
  const isDefaultStore = systemStoreDir === SYSTEM_STORE_DIR;
  return {
    systemStoreDir,
    updateCommand: overrides.updateCommand !== undefined ? overrides.updateCommand : isDefaultStore && update ? [update] : null,
    systemBundle: overrides.systemBundle !== undefined ? overrides.systemBundle : isDefaultStore ? SYSTEM_BUNDLE : null,
    updateHooksDir: overrides.updateHooksDir !== undefined ? overrides.updateHooksDir : isDefaultStore && existsSync(UPDATE_HOOKS_DIR) ? UPDATE_HOOKS_DIR : null,
    homes: overrides.homes ?? [...homes],
    certutil: overrides.certutil !== undefined ? overrides.certutil : which('certutil', env.PATH ?? ''),
  };
}

export interface NssDatabase {
  kind: 'nss' | 'firefox';
  dir: string;
  exists: boolean;
  home: string;
}

/** ~/.pki/nssdb (whether or not it exists yet) and every Firefox profile with a cert9.db. */
export function findNssDatabases(homes: string[]): NssDatabase[] {
  const found: NssDatabase[] = [];
  for (const home of homes) {
    const pki = join(home, '.pki', 'nssdb');
    found.push({ kind: 'nss', dir: pki, exists: existsSync(join(pki, 'cert9.db')), home });
    for (const base of [join(home, '.mozilla', 'firefox'), join(home, 'snap', 'firefox', 'common', '.mozilla', 'firefox')]) {
      let profiles: string[] = [];
      try {
        profiles = readdirSync(base);
      } catch {
        continue;
      }
      for (const profile of profiles.sort()) {
        const dir = join(base, profile);
        if (existsSync(join(dir, 'cert9.db'))) found.push({ kind: 'firefox', dir, exists: true, home });
      }
    }
  }
  return found;
}

interface Run {
  ok: boolean;
  stdout: string;
  message: string;
}

function run(command: string, args: string[]): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  if (result.error) return { ok: false, stdout: '', message: result.error.message };
  const message = (result.stderr || result.stdout || '').trim().split('\n').slice(-1)[0] ?? '';
  return { ok: result.status === 0, stdout: result.stdout ?? '', message: message || `exit status ${result.status}` };
}

/** Gives files we created or rewrote under a user's home back to that user (we may be root). */
async function giveBack(home: string, paths: string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(home);
  } catch {
    return;
  }
  if (owner.uid === 0) return;
  for (const path of paths) await lchown(path, owner.uid, owner.gid).catch(() => undefined);
}

/**
 * As root in another user's home, a symlink planted under it could point certutil (and our
 * chown) at files elsewhere. Refuse any symlink between the home and the database.
 */
function symlinkOnPath(home: string, dir: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (let path = dir; path.startsWith(`${home}/`); path = dirname(path)) {
    try {
      if (lstatSync(path).isSymbolicLink()) return path;
    } catch {
      // not created yet
    }
  }
  return undefined;
}

function nssFiles(dir: string): string[] {
  return ['cert9.db', 'key4.db', 'pkcs11.txt'].map((f) => join(dir, f)).filter((f) => existsSync(f));
}

/** Every certificate stored in an NSS database under our nickname, as DER. */
function nssCertificates(certutil: string, dir: string): Buffer[] {
  const listed = run(certutil, ['-L', '-d', `sql:${dir}`, '-n', CA_NICKNAME, '-a']);
  return listed.ok ? pemBlocks(listed.stdout) : [];
}

function nssTrustFlags(certutil: string, dir: string): string | undefined {
  const listed = run(certutil, ['-L', '-d', `sql:${dir}`]);
  if (!listed.ok) return undefined;
  for (const line of listed.stdout.split('\n')) {
    const m = /^(.*\S)\s+(\S*,\S*,\S*)\s*$/.exec(line);
    if (m && m[1] === CA_NICKNAME) return m[2];
  }
  return undefined;
}

function removeFromNss(certutil: string, dir: string): number {
  let removed = 0;
  // One nickname may name several certificates (older generations); delete until none is left.
  while (removed < 50 && run(certutil, ['-D', '-d', `sql:${dir}`, '-n', CA_NICKNAME]).ok) removed++;
  return removed;
}

function label(db: NssDatabase): string {
  return db.kind === 'firefox' ? `Firefox profile ${db.dir}` : `NSS database ${db.dir} (Chrome/Chromium)`;
}

async function trustInNss(certutil: string | null, db: NssDatabase, caFile: string): Promise<StoreResult> {
  const base = { kind: db.kind, location: db.dir } as const;
  if (!certutil) return { ...base, ok: false, detail: `certutil is not installed, so ${label(db)} was not changed`, hint: CERTUTIL_HINT };
  const link = symlinkOnPath(db.home, db.dir);
  if (link) return { ...base, ok: false, detail: `${link} is a symbolic link; not following it as root`, hint: `Run "cardbridge certs trust" as the owner of ${db.home} instead.` };
  const created: string[] = [];
  if (!db.exists) {
    for (const dir of [join(db.home, '.pki'), db.dir]) if (!existsSync(dir)) created.push(dir);
    await mkdir(db.dir, { recursive: true, mode: 0o700 });
    const init = run(certutil, ['-N', '-d', `sql:${db.dir}`, '--empty-password']);
    if (!init.ok) return { ...base, ok: false, detail: `could not create the NSS database: ${init.message}`, hint: 'Check that the directory is writable and not on a read-only file system.' };
  }
  removeFromNss(certutil, db.dir);
  const added = run(certutil, ['-A', '-d', `sql:${db.dir}`, '-n', CA_NICKNAME, '-t', 'C,,', '-a', '-i', caFile]);
  await giveBack(db.home, [...created, ...nssFiles(db.dir)]);
  if (!added.ok) {
    return { ...base, ok: false, detail: `certutil could not add the CA: ${added.message}`, hint: db.kind === 'firefox' ? 'Close Firefox and run "cardbridge certs trust" again.' : 'Check the database\'s owner and permissions.' };
  }
  return { ...base, ok: true, detail: db.exists ? `trusted in ${label(db)}` : `created ${label(db)} and trusted the CA there` };
}

async function trustInSystem(environment: TrustEnvironment, caPem: string): Promise<StoreResult | undefined> {
  const dir = environment.systemStoreDir;
  if (!dir) return undefined;
  const file = join(dir, SYSTEM_STORE_FILE);
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(file, caPem, 0o644);
  } catch (e) {
    return { kind: 'system', location: file, ok: false, detail: `cannot write ${file}: ${(e as Error).message}`, hint: 'Run "sudo cardbridge certs trust" (the system store needs root).' };
  }
  if (!environment.updateCommand) return { kind: 'system', location: file, ok: true, detail: `copied to ${file} (no update command run for this store)` };
  const [command, ...args] = environment.updateCommand;
  const update = run(command!, args);
  if (!update.ok) {
    return { kind: 'system', location: file, ok: false, detail: `${command} failed: ${update.message}`, hint: 'Install ca-certificates ("sudo apt-get install ca-certificates") and run it as root.' };
  }
  return { kind: 'system', location: file, ok: true, detail: `installed as ${file} and ran ${command}` };
}

/** Installs the CA everywhere the environment names, replacing any older cardbridge CA. */
export async function trustCa(caPem: string, environment: TrustEnvironment): Promise<StoreResult[]> {
  const results: StoreResult[] = [];
  const system = await trustInSystem(environment, caPem);
  if (system) results.push(system);
  // certutil wants a file: a copy of the (public) CA certificate in a fresh private directory
  // (never a guessable name in /tmp, which another local user could pre-create as a symlink).
  const scratch = await mkdtemp(join(tmpdir(), 'cardbridge-trust-'));
  const caFile = join(scratch, 'ca.pem');
  await writeFile(caFile, caPem, { mode: 0o644, flag: 'wx' });
  try {
    for (const db of findNssDatabases(environment.homes)) results.push(await trustInNss(environment.certutil, db, caFile));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return results;
}

/**
 * update-ca-certificates notices a new local certificate but not a removed one (it removes only
 * what /etc/ca-certificates.conf marks with "!"), so its link in the bundle's directory and the
 * hash links to it would stay. Removes them, as its own remove() does; returns the link's path.
 */
function forgetStoreLinks(environment: TrustEnvironment): string | undefined {
  if (!environment.systemBundle) return undefined;
  const dir = dirname(environment.systemBundle);
  const name = SYSTEM_STORE_FILE.replace(/\.crt$/, '.pem');
  const pem = join(dir, name);
  let present = false;
  try {
    present = lstatSync(pem).isSymbolicLink();
  } catch {
    return undefined;
  }
  if (!present) return undefined;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    try {
      if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === name) rmSync(path, { force: true });
    } catch {
      // gone meanwhile
    }
  }
  rmSync(pem, { force: true });
  return pem;
}

/** Tells update-ca-certificates' hooks (Java's keystore) that the certificate behind `pem` is gone. */
function tellHooksRemoved(environment: TrustEnvironment, pem: string): void {
  const hooks = environment.updateHooksDir;
  if (!hooks || !existsSync(hooks)) return;
  for (const hook of readdirSync(hooks).sort()) {
    const path = join(hooks, hook);
    try {
      accessSync(path, constants.X_OK);
    } catch {
      continue; // run-parts runs only executables
    }
    spawnSync(path, [], { input: `-${pem}\n`, stdio: ['pipe', 'ignore', 'ignore'], timeout: 60_000 });
  }
}

/** Removes every cardbridge CA from the system store and the NSS databases. */
export async function untrustCa(environment: TrustEnvironment): Promise<StoreResult[]> {
  const results: StoreResult[] = [];
  if (environment.systemStoreDir) {
    const file = join(environment.systemStoreDir, SYSTEM_STORE_FILE);
    if (existsSync(file)) {
      try {
        await rm(file);
        let detail = `removed ${file}`;
        if (environment.updateCommand) {
          const forgotten = forgetStoreLinks(environment);
          const [command, ...args] = environment.updateCommand;
          const update = run(command!, args);
          if (update.ok && forgotten) tellHooksRemoved(environment, forgotten);
          detail += update.ok ? ` and ran ${command}` : `, but ${command} failed: ${update.message}`;
          results.push({ kind: 'system', location: file, ok: update.ok, detail });
        } else results.push({ kind: 'system', location: file, ok: true, detail });
      } catch (e) {
        results.push({ kind: 'system', location: file, ok: false, detail: `cannot remove ${file}: ${(e as Error).message}`, hint: 'Run it as root.' });
      }
    }
  }
  for (const db of findNssDatabases(environment.homes).filter((d) => d.exists)) {
    if (!environment.certutil) {
      results.push({ kind: db.kind, location: db.dir, ok: false, detail: `certutil is not installed, so ${label(db)} was not checked`, hint: CERTUTIL_HINT });
      continue;
    }
    const link = symlinkOnPath(db.home, db.dir);
    if (link) {
      results.push({ kind: db.kind, location: db.dir, ok: false, detail: `${link} is a symbolic link; not following it as root`, hint: `Run "cardbridge certs untrust" as the owner of ${db.home}.` });
      continue;
    }
    const removed = removeFromNss(environment.certutil, db.dir);
    await giveBack(db.home, nssFiles(db.dir));
    if (removed > 0) results.push({ kind: db.kind, location: db.dir, ok: true, detail: `removed ${removed} certificate(s) from ${label(db)}` });
  }
  return results;
}

/** Where the CA is trusted now, and where it is not (with the fix). */
export async function trustStatus(caPem: string, environment: TrustEnvironment): Promise<StoreResult[]> {
  const caDer = pemBlocks(caPem)[0];
  if (!caDer) throw new RangeError('not a PEM certificate');
  const results: StoreResult[] = [];
  const fix = 'Run "sudo cardbridge certs trust".';
  if (environment.systemStoreDir) {
    const file = join(environment.systemStoreDir, SYSTEM_STORE_FILE);
    let inStore = false;
    try {
      inStore = pemBlocks(await readFile(file, 'utf8')).some((d) => d.equals(caDer));
    } catch {
      // missing
    }
    let inBundle = true;
    if (inStore && environment.systemBundle) {
      try {
        inBundle = pemBlocks(await readFile(environment.systemBundle, 'utf8')).some((d) => d.equals(caDer));
      } catch {
        inBundle = false;
      }
    }
    results.push(
      !inStore
        ? { kind: 'system', location: file, ok: false, detail: existsSync(file) ? 'the system store holds an older cardbridge CA' : 'not in the system store', hint: fix }
        : !inBundle
          ? { kind: 'system', location: file, ok: false, detail: `copied but not in ${environment.systemBundle}`, hint: 'Run "sudo update-ca-certificates".' }
          : { kind: 'system', location: file, ok: true, detail: 'trusted by the system store' },
    );
  }
  for (const db of findNssDatabases(environment.homes)) {
    const base = { kind: db.kind, location: db.dir } as const;
    if (!db.exists) {
      results.push({ ...base, ok: false, detail: `${label(db)} does not exist yet (Chrome creates it on first start)`, hint: fix });
      continue;
    }
    if (!environment.certutil) {
      results.push({ ...base, ok: false, detail: `certutil is not installed, cannot check ${label(db)}`, hint: CERTUTIL_HINT });
      continue;
    }
    const present = nssCertificates(environment.certutil, db.dir).some((d) => d.equals(caDer));
    const flags = present ? nssTrustFlags(environment.certutil, db.dir) : undefined;
    results.push(
      !present
        ? { ...base, ok: false, detail: `not trusted in ${label(db)}`, hint: fix }
        : !flags?.split(',')[0]?.includes('C')
          ? { ...base, ok: false, detail: `present in ${label(db)} but not trusted for TLS (flags ${flags ?? '?'})`, hint: fix }
          : { ...base, ok: true, detail: `trusted in ${label(db)}` },
    );
  }
  return results;
}
