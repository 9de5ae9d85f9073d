import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockBridge, MOCK_READERS, approve, deny, startMockBridge } from '../../../src/testing/index.js';

// The daemon is a child process (bin/cardbridge.js → dist/): npm test builds dist/ first.
jest.setTimeout(120_000);

describe('cardbridge/testing: startMockBridge without a browser', () => {
  let bridge: MockBridge;
  beforeAll(async () => {
    bridge = await startMockBridge({ origins: ['http://localhost:3000'], listeners: ['hipki'] });
  });
  afterAll(async () => bridge?.stop());

  it('runs on free ports with its own state directory and test PKI', async () => {
    expect(bridge.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(bridge.url).not.toBe('https://127.0.0.1:39443');
    expect(Object.keys(bridge.listeners).sort()).toEqual(['hipki', 'native']);
    expect(bridge.stateDir.startsWith(tmpdir())).toBe(true);
    expect(readFileSync(join(bridge.pkiDir, 'ca-bundle.pem'), 'utf8')).toBe(bridge.caBundlePem);
    expect(bridge.caBundlePem).toBe(bridge.pki.root + bridge.pki.issuing);
    expect(bridge.pin).toBe('123456');
  });

  it('chromiumArgs pin exactly the daemon’s TLS key', () => {
    const leaf = new X509Certificate(readFileSync(join(bridge.stateDir, 'server.pem')));
    const hash = createHash('sha256').update(leaf.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
    expect(bridge.chromiumArgs).toEqual([`--ignore-certificate-errors-spki-list=${hash}`]);
  });

  it('card control: remove, insert another generation, resetPin, state', async () => {
    expect(await bridge.state()).toEqual([
      { name: MOCK_READERS.nhi, card: 'nhi' },
      { name: MOCK_READERS.moica, card: 'moica-gen2', triesLeft: 3 },
    ]);
    await bridge.remove();
    expect((await bridge.state())[1]).toEqual({ name: MOCK_READERS.moica, card: null });
    await bridge.insert(MOCK_READERS.moica, 'moica-gen1');
    expect((await bridge.state())[1]).toMatchObject({ card: 'moica-gen1', triesLeft: 3 });
    await bridge.resetPin();
    await expect(bridge.resetPin(MOCK_READERS.nhi)).rejects.toThrow(/409|WrongCard|MOICA/);
    await expect(bridge.insert('No Such Reader')).rejects.toThrow(/No mock reader/);
  });
});

describe('cardbridge/testing: lifecycle and errors', () => {
  it('stop() ends the daemon and removes the state directory it made', async () => {
    const bridge = await startMockBridge();
    await bridge.stop();
    expect(existsSync(bridge.stateDir)).toBe(false);
    await expect(bridge.state()).rejects.toThrow(/ECONNREFUSED/);
  });

  it('a state directory the caller gave is kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardbridge-kit-'));
    try {
      const bridge = await startMockBridge({ stateDir: dir });
      await bridge.stop();
      expect(existsSync(join(dir, 'ca.pem'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown listener, and a daemon that cannot start is a clear error', async () => {
    await expect(startMockBridge({ listeners: ['smtp' as never] })).rejects.toThrow('Unknown listener "smtp"');
    await expect(startMockBridge({ origins: ['not an origin'] })).rejects.toThrow(/cardbridge serve --mock did not start: it exited[\s\S]*Invalid origin pattern "not an origin"/);
  });

  it('approve() without a PIN on a PIN form says what to pass; deny() picks Cancel there', async () => {
    const clicked: string[] = [];
    const pinForm = {
      waitForURL: async () => undefined,
      waitForSelector: async () => undefined,
      isVisible: async (s: string) => s === '#pinform',
      fill: async () => undefined,
      click: async (s: string) => void clicked.push(s),
      check: async (s: string) => void clicked.push(s),
    };
    await expect(approve(pinForm)).rejects.toThrow('approve(popup, { pin })');
    await approve(pinForm, { pin: '123456', lastTry: true });
    await deny(pinForm);
    expect(clicked).toEqual(['#lasttry', '#sign', '#cancel']);
  });
});
