import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';

describe('cardbridge demo (npm start)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-demo-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the daemon with virtual cards and the demo site until SIGTERM', async () => {
    const nativePort = await freePort();
    const sitePort = await freePort();
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ listeners: { native: { port: nativePort }, hipki: { enabled: false }, 'nhi-ws': { enabled: false }, 'nhi-http': { enabled: false }, 'nhi-https': { enabled: false } } }));
    const io = captureIO();
    const running = main(['demo', '--config', config, '--state-dir', join(dir, 'state'), '--site-port', String(sitePort)], io);
    let finished = false;
    void running.then(() => (finished = true));
    for (let i = 0; i < 1000 && !io.stdout.some((l) => l.includes('Press Ctrl+C')); i++) await new Promise((r) => setTimeout(r, 10));
    const text = io.stdout.join('\n');
    expect(text).toContain(`Demo site     https://localhost:${sitePort}`);
    expect(text).toContain(`https://127.0.0.1:${nativePort}`);
    expect(text).toMatch(/Mock Reader 0\s+nhi/);
    expect(text).toMatch(/Mock Reader 1\s+moica-gen2\s+3 PIN tries/);
    expect(text).toContain(`certs trust --state-dir ${join(dir, 'state')}`);

    const ca = readFileSync(join(dir, 'state', 'ca.pem'));
    const home = await request({ port: sitePort, path: '/', ca, headers: { host: `localhost:${sitePort}` } });
    expect(home.status).toBe(200);
    expect(home.text).toContain('cardbridge 示範網站');
    const mock = await request({ port: nativePort, path: '/v1/mock', ca, headers: { origin: `https://localhost:${sitePort}` } });
    expect(mock.status).toBe(200);
    expect(mock.headers['access-control-allow-origin']).toBe(`https://localhost:${sitePort}`);
    expect(mock.json().readers.map((r: { card: string }) => r.card)).toEqual(['nhi', 'moica-gen2']);

    expect(finished).toBe(false);
    process.emit('SIGTERM');
    await expect(running).resolves.toBe(0);
    expect(io.stdout.at(-1)).toBe('demo stopped');
  });

  it('refuses unexpected arguments', async () => {
    const io = captureIO();
    expect(await main(['demo', 'now'], io)).toBe(2);
    expect(io.stderr[0]).toContain('unexpected argument "now"');
  });
});
