import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LISTENERS } from '../../../src/config/listeners.js';
import { freePort } from '../../helpers/ports.js';

// Start-up cost is module loading: `cardbridge --version` and `--help` must load no command
// module and none of the heavy dependencies behind them (issue 17, "start fast").
// Runs the built CLI (bin/cardbridge.js → dist/), as users do: `npm run build` first.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const recorder = new URL('../../helpers/record-imports.mjs', import.meta.url).href;
const HEAVY = /\/node_modules\/(fastify|pkijs|pcsclite|asn1js|pino|ws|iconv-lite)\//;
const COMMAND_MODULE = /\/dist\/cli\/commands\/(?!index\.js$)[^/]+\.js$/;

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-imports-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let runs = 0;
function loadedBy(args: string[]): { status: number | null; stdout: string; modules: string[] } {
  const file = join(dir, `run-${++runs}.txt`);
  const run = spawnSync(process.execPath, ['--import', recorder, join(root, 'bin', 'cardbridge.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CARDBRIDGE_RECORD_IMPORTS: file },
  });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, modules: readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}

describe('what the CLI loads', () => {
  it.each([['--version'], ['--help']])('%s loads no command module, fastify, pkijs or the PC/SC addon', (flag) => {
    const { status, stdout, modules } = loadedBy([flag]);
    expect(status).toBe(0);
    expect(stdout).toContain('0.');
    // The recorder saw the CLI itself, so an empty list cannot pass for a lean one.
    expect(modules).toEqual(expect.arrayContaining([expect.stringMatching(/\/dist\/cli\/main\.js$/)]));
    expect(modules.filter((url) => HEAVY.test(url) || COMMAND_MODULE.test(url))).toEqual([]);
  });

  it('a command loads its own module and what that needs, and no other command', () => {
    const { status, modules } = loadedBy(['crl', '--help']);
    expect(status).toBe(0);
    expect(modules).toEqual(expect.arrayContaining([expect.stringMatching(/\/dist\/cli\/commands\/crl\.js$/), expect.stringMatching(/\/node_modules\/pkijs\//)]));
    expect(modules.filter((url) => COMMAND_MODULE.test(url) && !url.endsWith('/crl.js'))).toEqual([]);
  });

  it('serve imports the server module of an enabled listener only', async () => {
    const port = await freePort();
    const config = join(dir, 'one-listener.json');
    const listeners = Object.fromEntries(DEFAULT_LISTENERS.map((l) => [l.name, { enabled: l.name === 'nhi-http', port }]));
    writeFileSync(config, JSON.stringify({ listeners, logLevel: 'error' }));
    const file = join(dir, 'serve.txt');
    const child = spawn(process.execPath, ['--import', recorder, join(root, 'bin', 'cardbridge.js'), 'serve', '--mock', '--config', config, '--state-dir', join(dir, 'state')], {
      cwd: root,
      env: { ...process.env, CARDBRIDGE_RECORD_IMPORTS: file },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const ready = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`serve exited (${code}) before it was ready`)));
      });
      expect(JSON.parse(ready)).toMatchObject({ cardbridge: 'ready', listeners: { 'nhi-http': `http://127.0.0.1:${port}` } });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const modules = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(modules).toEqual(expect.arrayContaining([expect.stringMatching(/\/dist\/server\/nhi\/index\.js$/)]));
    expect(modules.filter((url) => /\/dist\/server\/(native\/app|hipki\/)/.test(url))).toEqual([]);
  });
});
