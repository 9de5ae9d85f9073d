import { jest } from '@jest/globals';
import { X509Certificate, sign as rsaSign, verify as rsaVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { DEFAULT_CONFIG } from '../../../src/daemon/config.js';
import { startDaemon } from '../../../src/daemon/daemon.js';
import { createLogger } from '../../../src/daemon/logger.js';
import { loadOrCreateTestPki, TEST_PKI_FILES } from '../../../src/emulator/moica/test-pki-store.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { captureIO } from '../../helpers/capture-io.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';

jest.setTimeout(60_000);

describe('a test PKI that survives processes (serve --mock --pki DIR, cardbridge mock pki)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-pki-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the PKI once, then loads the same certificates and keys', async () => {
    const created = await loadOrCreateTestPki(dir);
    const loaded = await loadOrCreateTestPki(dir);
    for (const which of ['root', 'issuing', 'sign', 'encrypt'] as const) expect(loaded[which].der.equals(created[which].der)).toBe(true);
    expect(loaded.holder).toEqual(created.holder);
    // the loaded card key is the certificate's key
    const signature = rsaSign('sha256', Buffer.from('nonce'), loaded.sign.privateKey);
    expect(rsaVerify('sha256', Buffer.from('nonce'), new X509Certificate(created.sign.der).publicKey, signature)).toBe(true);
    expect(new X509Certificate(loaded.issuing.der).verify(new X509Certificate(loaded.root.der).publicKey)).toBe(true);
    // public CA chain for back ends; private keys readable by the owner only
    expect(readFileSync(join(dir, TEST_PKI_FILES.caBundle), 'utf8')).toBe(created.caBundlePem);
    expect(statSync(join(dir, TEST_PKI_FILES.keys)).mode & 0o777).toBe(0o600);
  });

  it('two processes starting at once end up with one PKI', async () => {
    const [a, b] = await Promise.all([loadOrCreateTestPki(dir), loadOrCreateTestPki(dir)]);
    expect(a.root.der.equals(b.root.der)).toBe(true);
    expect((await loadOrCreateTestPki(dir)).root.der.equals(a.root.der)).toBe(true);
  });

  it('a damaged PKI file is a clear error, never silently replaced', async () => {
    writeFileSync(join(dir, TEST_PKI_FILES.keys), '{"not":"a pki"}');
    await expect(loadOrCreateTestPki(dir)).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining(TEST_PKI_FILES.keys) });
  });

  it('cardbridge mock pki --out DIR writes the chain for a back end that starts first; serve --mock --pki DIR then uses it', async () => {
    const io = captureIO();
    expect(await main(['mock', 'pki', '--out', dir], io)).toBe(0);
    const bundle = readFileSync(join(dir, TEST_PKI_FILES.caBundle), 'utf8');
    expect(io.stdout.join('\n')).toContain(join(dir, TEST_PKI_FILES.caBundle));

    const port = await freePort();
    const config = structuredClone(DEFAULT_CONFIG);
    for (const settings of Object.values(config.listeners)) settings.enabled = false;
    config.listeners.native = { enabled: true, port };
    const daemon = await startDaemon({ config, mock: true, logger: createLogger('silent'), stateDir: join(dir, 'state'), testPkiDir: dir });
    try {
      const answer = await request({ port, path: '/v1/mock/pki', ca: daemon.tls.ca, headers: { host: `127.0.0.1:${port}` } });
      expect(answer.status).toBe(200);
      expect(answer.json()).toEqual({
        caBundlePem: bundle,
        root: expect.stringContaining('BEGIN CERTIFICATE'),
        issuing: expect.stringContaining('BEGIN CERTIFICATE'),
        holder: expect.objectContaining({ name: expect.any(String), idLastFour: expect.any(String) }),
      });
      expect(answer.text).not.toContain('PRIVATE KEY');
      // the virtual 自然人憑證 in the mock reader carries this PKI's certificate
      const certificates = await new MoicaService(daemon.registry).listCertificates();
      const persisted = await loadOrCreateTestPki(dir);
      expect(certificates.find((c) => c.id === 'SIGN')?.der.equals(persisted.sign.der)).toBe(true);
      expect(new X509Certificate(persisted.sign.der).verify(new X509Certificate(answer.json().issuing).publicKey)).toBe(true);
    } finally {
      await daemon.stop();
    }
  });

  it('GET /v1/mock/pki exists in mock mode only', async () => {
    const port = await freePort();
    const config = structuredClone(DEFAULT_CONFIG);
    for (const settings of Object.values(config.listeners)) settings.enabled = false;
    config.listeners.native = { enabled: true, port };
    const daemon = await startDaemon({ config, mock: false, logger: createLogger('silent'), stateDir: join(dir, 'state') });
    try {
      const answer = await request({ port, path: '/v1/mock/pki', ca: daemon.tls.ca, headers: { host: `127.0.0.1:${port}` } });
      expect(answer.status).toBe(404);
    } finally {
      await daemon.stop();
    }
  });

  it('mock pki refuses a missing --out', async () => {
    const io = captureIO();
    expect(await main(['mock', 'pki'], io)).toBe(2);
    expect(io.stderr[0]).toContain('--out');
    const serve = captureIO();
    expect(await main(['serve', '--pki', dir], serve)).toBe(2);
    expect(serve.stderr[0]).toContain('use it with --mock');
  });
});
