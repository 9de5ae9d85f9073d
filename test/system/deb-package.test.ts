import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeGated } from '../helpers/system-rig.js';
import { request } from '../helpers/http.js';
import { which } from '../../src/certs/trust.js';

/**
 * The Debian package as an administrator uses it, on this machine's real root: build it, dpkg -i,
 * start the daemon as the service user by hand (no systemd here), /v1/status, doctor --json, a
 * bad configuration, upgrade to a rebuilt higher version keeping the state, remove, purge — and
 * afterwards the machine is exactly as before. CI runs it on a throw-away machine; on a shared
 * one, run it under the rig lock (docs/testing.md).
 */
const repo = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const STATE = '/var/lib/cardbridge';
const CONFIG = '/etc/cardbridge/config.json';
const CLI = '/usr/bin/cardbridge';
const NATIVE_PORT = 39443;

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, output: `${result.stdout}${result.stderr}` };
}

function ok(command: string, args: string[]): string {
  const result = run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}:\n${result.output}`);
  return result.stdout;
}

function installed(): boolean {
  return run('dpkg-query', ['-W', '-f=${Status}', 'cardbridge']).stdout.includes('installed');
}

function problem(): string | undefined {
  if (process.platform !== 'linux') return 'Debian packages need Linux';
  const missing = ['dpkg', 'dpkg-deb', 'setpriv', 'npm'].filter((t) => which(t) === null);
  if (missing.length) return `${missing.join(', ')} not installed`;
  if (process.getuid?.() !== 0) return 'installing a package needs root';
  if (installed()) return 'cardbridge is installed on this machine; the test would replace it';
  if (existsSync(STATE) || run('getent', ['passwd', 'cardbridge']).code === 0) return `${STATE} or the user cardbridge already exists; the test must start from a machine without them`;
  return undefined;
}

/**
 * What the package may touch, as path → type and content hash. Left out: dpkg's own database
 * (/var/lib/dpkg records the package's history) and the backup copies useradd/userdel keep of
 * the account files (/etc/passwd- and friends hold the previous version by design).
 */
function snapshot(): Map<string, string> {
  const skip = new Set(['/var/lib/dpkg', '/etc/passwd-', '/etc/group-', '/etc/shadow-', '/etc/gshadow-', '/etc/subuid-', '/etc/subgid-']);
  const out = new Map<string, string>();
  const walk = (path: string) => {
    if (skip.has(path)) return;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) out.set(path, `link ${readlinkSync(path)}`);
    else if (st.isDirectory()) {
      out.set(path, `dir ${(st.mode & 0o7777).toString(8)} ${st.uid}`);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else {
      // Contents of small files (configuration, certificates, account files); big ones by size.
      const content = st.size < 1024 * 1024 ? createHash('sha256').update(readFileSync(path)).digest('hex') : `${st.size} bytes`;
      out.set(path, `file ${(st.mode & 0o7777).toString(8)} ${st.uid} ${content}`);
    }
  };
  for (const root of ['/etc', '/usr/lib/cardbridge', '/usr/bin', '/lib/systemd/system', '/usr/local', '/var/lib']) walk(root);
  return out;
}

function differences(before: Map<string, string>, after: Map<string, string>): string[] {
  const diff: string[] = [];
  for (const [path, what] of after) if (before.get(path) !== what) diff.push(`${before.has(path) ? 'changed' : 'added'} ${path}`);
  for (const path of before.keys()) if (!after.has(path)) diff.push(`removed ${path}`);
  return diff.sort();
}

describeGated('the Debian package (npm run package:deb)', problem(), () => {
  let out: string;
  let first: string;
  let daemon: ChildProcess | undefined;
  let before: Map<string, string>;
  let hostsBefore: string;
  let stateBeforeUpgrade: Record<string, string>;
  const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
  const upgradeVersion = `${version}+upgrade1`;

  /** `cardbridge serve` as the service user, the way the unit runs it, without systemd. */
  async function startDaemon(): Promise<void> {
    const child = spawn('setpriv', ['--reuid=cardbridge', '--regid=cardbridge', '--init-groups', '--', CLI, 'serve', '--config', CONFIG], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CARDBRIDGE_STATE_DIR: STATE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    daemon = child;
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the daemon did not get ready in 30 s:\n${log}`)), 30_000);
      child.stdout!.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('cardbridge ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited ${code}:\n${log}`));
      });
    });
  }

  async function stopDaemon(): Promise<void> {
    const child = daemon;
    daemon = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async function status() {
    const answer = await request({ port: NATIVE_PORT, path: '/v1/status', ca: readFileSync(join(STATE, 'ca.pem')) });
    return { status: answer.status, body: answer.json<{ version: string }>() };
  }

  beforeAll(() => {
    before = snapshot();
    hostsBefore = readFileSync('/etc/hosts', 'utf8');
    out = mkdtempSync(join(tmpdir(), 'cardbridge-deb-'));
    if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) ok('npm', ['run', 'build', '--prefix', repo]);
    // Uncompressed: the test measures the package, not xz.
    first = ok('bash', [join(repo, 'scripts', 'build-deb.sh'), '--out', out, '--compress', 'none']).trim().split('\n').at(-1)!;
  }, 300_000);

  afterAll(async () => {
    await stopDaemon();
    // Whatever failed above, leave the machine as found.
    if (run('dpkg-query', ['-W', 'cardbridge']).code === 0) run('dpkg', ['--purge', 'cardbridge']);
    if (out) rmSync(out, { recursive: true, force: true });
  }, 120_000);

  it('is named cardbridge_<version>_<arch>.deb and holds the app, its dependencies, the addon and a Node ≥ 20', () => {
    const arch = ok('dpkg', ['--print-architecture']).trim();
    expect(first).toBe(join(out, `cardbridge_${version}_${arch}.deb`));
    const files = ok('dpkg-deb', ['--contents', first]);
    for (const path of ['./usr/bin/cardbridge', './usr/lib/cardbridge/node', './usr/lib/cardbridge/dist/cli/main.js', './usr/lib/cardbridge/node_modules/pcsclite/build/Release/pcsclite.node', './usr/lib/cardbridge/node_modules/fastify/package.json', './lib/systemd/system/cardbridge.service', './etc/cardbridge/config.json', './usr/lib/cardbridge/docs/config.schema.json']) {
      expect(files).toContain(path);
    }
    expect(files).not.toContain('node_modules/jest/');
    expect(files).not.toContain('node_modules/typescript/');
    expect(ok('dpkg-deb', ['--field', first, 'Depends'])).toContain('libpcsclite1');
  });

  it('installs: user, state with the local CA, trust, hosts line, enabled unit; the CLI runs on the bundled Node', () => {
    ok('dpkg', ['-i', first]);
    expect(run('getent', ['passwd', 'cardbridge']).stdout).toMatch(/^cardbridge:x:\d+:\d+:cardbridge smart-card bridge \(created by the cardbridge package\),*:\/var\/lib\/cardbridge:\/usr\/sbin\/nologin$/m);
    const state = lstatSync(STATE);
    expect((state.mode & 0o777).toString(8)).toBe('700');
    expect(state.uid).toBe(Number(ok('id', ['-u', 'cardbridge']).trim()));
    for (const f of ['ca.pem', 'server.pem', 'server-key.pem']) expect(lstatSync(join(STATE, f)).uid).toBe(state.uid);
    expect(readFileSync('/usr/local/share/ca-certificates/cardbridge-local-ca.crt', 'utf8')).toBe(readFileSync(join(STATE, 'ca.pem'), 'utf8'));
    // Appended, unless the administrator already had a line of their own for the name.
    const ownLine = hostsBefore.split('\n').some((l) => /^[^#]*\siccert\.nhi\.gov\.tw(\s|$)/.test(l));
    expect(readFileSync('/etc/hosts', 'utf8')).toBe(ownLine ? hostsBefore : `${hostsBefore}127.0.0.1 iccert.nhi.gov.tw # cardbridge-managed\n`);
    expect(existsSync('/etc/systemd/system/multi-user.target.wants/cardbridge.service')).toBe(true);
    expect(readFileSync(CONFIG, 'utf8')).toBe('{}\n');
    expect(ok(CLI, ['--version']).trim()).toBe(version);
    expect(ok('/usr/lib/cardbridge/node', ['--version']).trim()).toMatch(/^v(2\d|[3-9]\d)\./);
  }, 120_000);

  it('runs as the service user without systemd: /v1/status answers over HTTPS with the local CA', async () => {
    await startDaemon();
    const answer = await status();
    expect(answer.status).toBe(200);
    expect(answer.body.version).toBe(version);
  }, 60_000);

  it('doctor --json names the configuration and state directory and sees the running daemon, trust and hosts entry', () => {
    const doctor = run(CLI, ['doctor', '--json']);
    const report = JSON.parse(doctor.stdout) as { configFile: string; stateDir: string; checks: { id: string; status: string; detail: string }[] };
    expect(report.configFile).toBe(CONFIG);
    expect(report.stateDir).toBe(STATE);
    const byId = (id: string) => report.checks.find((c) => c.id === id);
    expect(byId('config')).toMatchObject({ status: 'ok' });
    expect(byId('port:native')).toMatchObject({ status: 'ok', detail: expect.stringContaining('cardbridge is listening') });
    expect(byId('certificate')).toMatchObject({ status: 'ok' });
    expect(report.checks.find((c) => c.id.startsWith('trust:system'))).toMatchObject({ status: 'ok' });
    expect(byId('hosts')).toMatchObject({ status: 'ok' });
  });

  it('refuses a bad configuration at start, naming the key', () => {
    writeFileSync(CONFIG, '{"listeners":{"hipki":{"port":0}}}\n');
    try {
      const bad = run('setpriv', ['--reuid=cardbridge', '--regid=cardbridge', '--init-groups', '--', CLI, 'serve', '--config', CONFIG]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain(`${CONFIG}: listeners.hipki.port must be at least 1 (got 0)`);
    } finally {
      writeFileSync(CONFIG, '{}\n');
    }
  });

  it('upgrades to a rebuilt higher version keeping the CA, the certificate and the allow-list', async () => {
    ok(CLI, ['sites', 'allow', 'https://upgrade-check.example.gov.tw']);
    stateBeforeUpgrade = Object.fromEntries(['ca.pem', 'server.pem', 'server-key.pem', 'sites.json'].map((f) => [f, readFileSync(join(STATE, f), 'utf8')]));
    await stopDaemon();
    const second = ok('bash', [join(repo, 'scripts', 'build-deb.sh'), '--out', out, '--compress', 'none', '--version', upgradeVersion]).trim().split('\n').at(-1)!;
    rmSync(first);
    ok('dpkg', ['-i', second]);
    rmSync(second);
    expect(ok('dpkg-query', ['-W', '-f=${Version}', 'cardbridge'])).toBe(upgradeVersion);
    for (const [f, content] of Object.entries(stateBeforeUpgrade)) expect([f, readFileSync(join(STATE, f), 'utf8')]).toEqual([f, content]);
    expect(readFileSync('/etc/hosts', 'utf8').match(/# cardbridge-managed/g)?.length ?? 0).toBeLessThanOrEqual(1);
    await startDaemon();
    expect((await status()).body.version).toBe(upgradeVersion);
    expect(ok(CLI, ['sites', 'list'])).toContain('https://upgrade-check.example.gov.tw');
    await stopDaemon();
  }, 300_000);

  it('remove takes the CA out of the system store and keeps state and configuration; purge leaves the machine as it was', () => {
    ok('dpkg', ['--remove', 'cardbridge']);
    expect(existsSync('/usr/local/share/ca-certificates/cardbridge-local-ca.crt')).toBe(false);
    expect(existsSync('/usr/lib/cardbridge')).toBe(false);
    expect(readFileSync(join(STATE, 'ca.pem'), 'utf8')).toBe(stateBeforeUpgrade['ca.pem']);
    expect(existsSync(CONFIG)).toBe(true);
    ok('dpkg', ['--purge', 'cardbridge']);
    expect(run('getent', ['passwd', 'cardbridge']).code).not.toBe(0);
    expect(differences(before, snapshot())).toEqual([]);
  }, 120_000);
});
