import { jest } from '@jest/globals';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { VERSION } from '../../src/version.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(900_000);

const ROOT = resolve('.');
const PLAYWRIGHT_VERSION = (createRequire(join(ROOT, 'package.json'))('playwright-core/package.json') as { version: string }).version;

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 600_000, env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/**
 * What README's "Testing your own login page in CI" tells a site developer to do, literally:
 * pack cardbridge, install the tarball into a project (no registry has cardbridge), run the
 * CLI with npx, and run the project's Playwright login test, which starts the mock daemon
 * with cardbridge/testing and verifies the login with cardbridge/verify. npm fetches the
 * dependencies from its cache when it can (--prefer-offline), else from the registry.
 */
describeWithTools('the packed tarball, installed into another project', ['chromium', 'npm'], ['playwright-core'], () => {
  let dir: string;
  let project: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-package-'));
    const packed = run('npm', ['pack', '--pack-destination', dir], ROOT).stdout.trim().split('\n').at(-1)!;
    expect(packed).toBe(`cardbridge-${VERSION}.tgz`);
    project = join(dir, 'site');
    cpSync(join(ROOT, 'examples', 'native-login'), project, { recursive: true });
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-dev', join(dir, packed), `playwright-core@${PLAYWRIGHT_VERSION}`], project);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('npx cardbridge runs the installed CLI', () => {
    expect(run('npx', ['cardbridge', '--version'], project).stdout.trim()).toBe(VERSION);
  });

  it('cardbridge/client, cardbridge/verify and cardbridge/testing import in the project', () => {
    const script = `const [c, v, t] = await Promise.all(['cardbridge/client', 'cardbridge/verify', 'cardbridge/testing'].map((m) => import(m)));
console.log(JSON.stringify([typeof c.connect, typeof v.AuthTokenValidator, typeof t.startMockBridge, typeof t.approve]));`;
    const out = run(process.execPath, ['--input-type=module', '-e', script], project).stdout.trim();
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', 'function']);
    // the typed entry points ship their declarations
    for (const entry of ['client', 'verify', 'testing']) expect(existsSync(join(project, 'node_modules', 'cardbridge', 'dist', entry, 'index.d.ts'))).toBe(true);
  });

  it('the README’s shell recipe: mock pki, serve --mock --pki in the background, wait, sites allow; the allowed site and the back end get the CA chain', async () => {
    run('npx', ['cardbridge', 'mock', 'pki', '--out', './cb-pki'], project);
    const serve = spawn('npx', ['cardbridge', 'serve', '--mock', '--pki', './cb-pki', '--state-dir', './cb-state', '--ready-file', './cb-state/ready.json'], {
      cwd: project,
      stdio: 'ignore',
    });
    let daemonPid: number | undefined;
    try {
      const waited = run('npx', ['cardbridge', 'wait', '--ready-file', './cb-state/ready.json', '--timeout', '60'], project);
      expect(waited.stdout).toContain('cardbridge is ready at https://127.0.0.1:');
      const ready = JSON.parse(readFileSync(join(project, 'cb-state', 'ready.json'), 'utf8'));
      daemonPid = ready.pid;
      run('npx', ['cardbridge', 'sites', 'allow', 'http://localhost:3000', '--state-dir', './cb-state'], project);
      const ca = readFileSync(join(project, 'cb-state', 'ca.pem'), 'utf8');
      const { get } = await import('node:https');
      const served = await new Promise<{ body: string; allowOrigin: unknown }>((resolveBody, reject) => {
        get(`${ready.listeners.native}/v1/mock/pki`, { ca, headers: { origin: 'http://localhost:3000' } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolveBody({ body, allowOrigin: res.headers['access-control-allow-origin'] }));
        }).on('error', reject);
      });
      expect(served.allowOrigin).toBe('http://localhost:3000');
      expect(JSON.parse(served.body).caBundlePem).toBe(readFileSync(join(project, 'cb-pki', 'ca-bundle.pem'), 'utf8'));
    } finally {
      // The daemon is npx's child: end it by the PID its ready file gives, then npx.
      if (daemonPid) process.kill(daemonPid, 'SIGTERM');
      await new Promise((r) => (serve.exitCode !== null ? r(undefined) : serve.once('exit', r)));
    }
    expect(existsSync(join(project, 'cb-state', 'ready.json'))).toBe(false);
  });

  it('the project’s Playwright login test (npm test) passes: mock daemon from cardbridge/testing, login verified by cardbridge/verify', () => {
    const result = run('npm', ['test'], project, { CHROMIUM_PATH: '/usr/bin/chromium' });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(output).toMatch(/# pass 2/);
    expect(output).toMatch(/# fail 0/);
  });
});
