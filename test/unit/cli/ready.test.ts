import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { readyAnnouncement } from '../../../src/daemon/readiness.js';
import { captureIO } from '../../helpers/capture-io.js';
import { freePort } from '../../helpers/ports.js';

/** A config with only the native listener (and HiPKI), on free ports, and no log lines. */
async function config(dir: string): Promise<{ file: string; native: number; hipki: number }> {
  const native = await freePort();
  const hipki = await freePort();
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      logLevel: 'silent',
      listeners: { native: { port: native }, hipki: { port: hipki }, 'nhi-ws': { enabled: false }, 'nhi-http': { enabled: false }, 'nhi-https': { enabled: false } },
    }),
  );
  return { file, native, hipki };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A mock daemon makes its test PKI and TLS keys at start: seconds on a busy machine.
jest.setTimeout(60_000);

describe('readiness: serve says when it is ready, wait waits for it', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-ready-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serve prints one JSON ready line with every listener URL, writes --ready-file, and removes it on exit', async () => {
    const { file, native, hipki } = await config(dir);
    const readyFile = join(dir, 'ready.json');
    const io = captureIO();
    const running = main(['serve', '--mock', '--config', file, '--state-dir', join(dir, 'state'), '--ready-file', readyFile], io);
    await until(() => io.stdout.length > 0, 'the ready line');
    expect(io.stdout).toHaveLength(1);
    const ready = JSON.parse(io.stdout[0]!);
    expect(ready).toEqual({
      cardbridge: 'ready',
      version: expect.any(String),
      pid: process.pid,
      mock: true,
      stateDir: join(dir, 'state'),
      listeners: { native: `https://127.0.0.1:${native}`, hipki: `http://127.0.0.1:${hipki}` },
    });
    expect(JSON.parse(readFileSync(readyFile, 'utf8'))).toEqual(ready);

    const waited = captureIO();
    expect(await main(['wait', '--ready-file', readyFile, '--timeout', '5'], waited)).toBe(0);
    expect(waited.stdout).toEqual([`cardbridge is ready at https://127.0.0.1:${native}`]);

    process.emit('SIGTERM');
    await expect(running).resolves.toBe(0);
    expect(existsSync(readyFile)).toBe(false);
  });

  it('the ready line names listeners that did not start, with why', () => {
    const line = readyAnnouncement({ stateDir: '/s', listeners: [{ name: 'native', url: 'https://127.0.0.1:1' }, { name: 'hipki', error: 'port 61161 is held by x' }] }, false);
    expect(line.listeners).toEqual({ native: 'https://127.0.0.1:1' });
    expect(line.failed).toEqual({ hipki: 'port 61161 is held by x' });
  });

  it('wait --url answers 0 as soon as the daemon answers, even if it starts after wait', async () => {
    const { file, native } = await config(dir);
    const waited = captureIO();
    const waiting = main(['wait', '--url', `https://127.0.0.1:${native}`, '--timeout', '30'], waited);
    await new Promise((r) => setTimeout(r, 300));
    const io = captureIO();
    const running = main(['serve', '--mock', '--config', file, '--state-dir', join(dir, 'state')], io);
    await expect(waiting).resolves.toBe(0);
    process.emit('SIGTERM');
    await expect(running).resolves.toBe(0);
  });

  it('wait times out with a clear message and a non-zero exit when nothing answers', async () => {
    const port = await freePort();
    const io = captureIO();
    const started = Date.now();
    expect(await main(['wait', '--url', `https://127.0.0.1:${port}`, '--timeout', '1'], io)).toBe(1);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(io.stderr[0]).toBe(`cardbridge: no cardbridge daemon answered at https://127.0.0.1:${port} within 1 s [Timeout]`);
    expect(io.stderr.slice(1).join('\n')).toContain('cardbridge serve'); // the hint, after the catalogue's line
  });

  it('wait times out when the ready file never appears', async () => {
    const io = captureIO();
    expect(await main(['wait', '--ready-file', join(dir, 'never.json'), '--timeout', '0.5'], io)).toBe(1);
    expect(io.stderr[0]).toContain(`${join(dir, 'never.json')} did not appear within 0.5 s`);
  });

  it('wait refuses a bad timeout and a non-loopback or non-URL address', async () => {
    for (const args of [['--timeout', 'soon'], ['--timeout', '-1'], ['--url', 'not a url'], ['--url', 'https://example.com'], ['--url', 'x', '--ready-file', 'y']]) {
      const io = captureIO();
      expect(await main(['wait', ...args], io)).toBe(2);
      expect(io.stderr[0]).toMatch(/^cardbridge: /);
    }
  });
});
