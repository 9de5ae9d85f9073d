import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DEFAULT_CONFIG, loadConfig, type DaemonConfig } from '../../../src/daemon/config.js';
import { startDaemon } from '../../../src/daemon/daemon.js';
import { createLogger } from '../../../src/daemon/logger.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

describe('daemon', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = mkdtempSync(join(tmpdir(), 'cardbridge-daemon-'))));
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  function configOn(port: number): DaemonConfig {
    const config = structuredClone(DEFAULT_CONFIG);
    for (const settings of Object.values(config.listeners)) settings.enabled = false; // never the machine's real ports
    config.listeners.native = { enabled: true, port };
    return config;
  }

  it('serves the native API over HTTPS with a certificate from its local CA, and stops cleanly', async () => {
    const port = await freePort();
    const { logger } = captureLogger();
    const daemon = await startDaemon({ config: configOn(port), mock: true, logger, stateDir });
    try {
      expect(daemon.listeners).toEqual([{ name: 'native', url: `https://127.0.0.1:${port}` }]);
      const ca = readFileSync(join(stateDir, 'ca.pem'));
      const status = await request({ port, path: '/v1/status', ca, headers: { host: `localhost:${port}` } });
      expect(status.status).toBe(200);
      expect(status.json().readers.map((r: { card: { kind: string } }) => r.card.kind)).toEqual(['nhi', 'moica']);
    } finally {
      await daemon.stop();
    }
    await expect(request({ port, path: '/v1/status', ca: readFileSync(join(stateDir, 'ca.pem')) })).rejects.toThrow();
  });

  it('names the program holding its port instead of crashing', async () => {
    const port = await freePort();
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    const { logger, lines } = captureLogger();
    try {
      await expect(startDaemon({ config: configOn(port), mock: true, logger, stateDir })).rejects.toMatchObject({
        code: 'Unavailable',
        message: expect.stringMatching(new RegExp(`port ${port} is held by .*\\(pid ${process.pid}\\)`)),
      });
      expect(lines.some((l) => String(l.msg).includes(`port ${port} is held by`))).toBe(true);
    } finally {
      squatter.close();
    }
  });

  it('redacts PINs, secrets and personal data in logs', () => {
    const { logger, lines } = captureLogger();
    logger.info({ pin: '123456', result: { idNumber: 'A123456789', signature: 'c2ln' }, req: { headers: { 'x-cardbridge-secret': 's3cret' } } }, 'x');
    const text = JSON.stringify(lines);
    for (const secret of ['123456', 'A123456789', 'c2ln', 's3cret']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });
});

describe('config file', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (content: string) => {
    const file = join(dir, 'config.json');
    writeFileSync(file, content);
    return file;
  };

  it('uses defaults without a file and merges a partial one', () => {
    expect(loadConfig()).toEqual(DEFAULT_CONFIG);
    const config = loadConfig(write('{"allowedOrigins":["https://*.example.gov.tw"],"listeners":{"native":{"port":40000},"hipki":{"enabled":false}},"nhiSam":{"host":"127.0.0.1","port":7000}}'));
    expect(config.allowedOrigins).toEqual(['https://*.example.gov.tw']);
    expect(config.listeners.native).toEqual({ enabled: true, port: 40000 });
    expect(config.listeners.hipki).toEqual({ enabled: false, port: 61161 });
    expect(config.listeners['nhi-ws']).toEqual({ enabled: true, port: 7777 });
    expect(config.nhiSam).toMatchObject({ host: '127.0.0.1', port: 7000 });
    expect(config.rateLimit).toEqual({ perSecond: 20, burst: 40 });
    expect(loadConfig(write('{"rateLimit":{"perSecond":1000}}')).rateLimit).toEqual({ perSecond: 1000, burst: 40 });
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['a list', '[]', /expected a JSON object/],
    ['a typo', '{"allowedOrigin":[]}', /unknown setting "allowedOrigin"/],
    ['a bad pattern', '{"allowedOrigins":["gov.tw"]}', /Invalid origin pattern/],
    ['a bad port', '{"listeners":{"native":{"port":70000}}}', /listeners.native.port must be at most 65535/],
    ['a bad level', '{"logLevel":"loud"}', /logLevel/],
    ['an unknown listener', '{"listeners":{"hipky":{}}}', /unknown setting "listeners.hipky"/],
    ['a bad rate limit', '{"rateLimit":{"perSecond":0}}', /rateLimit.perSecond/],
    ['a rate-limit typo', '{"rateLimit":{"perSec":5}}', /unknown setting "rateLimit.perSec"/],
  ])('explains %s', (_name, content, message) => {
    expect(() => loadConfig(write(content))).toThrow(message);
  });

  it('explains a missing file', () => {
    expect(() => loadConfig(join(dir, 'nope.json'))).toThrow(/no such file/);
  });
});
