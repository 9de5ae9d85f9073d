import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { allowBrowsers, browserStatus, chromiumUrlPattern, removeBrowsers, type BrowserEnvironment } from '../../../src/browsers/policies.js';
import { main } from '../../../src/cli/main.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { captureIO } from '../../helpers/capture-io.js';

const CA = '/usr/local/share/ca-certificates/cardbridge-local-ca.crt';

describe('browser policies', () => {
  let root: string;
  let state: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cardbridge-browsers-'));
    state = join(root, 'var/lib/cardbridge');
    mkdirSync(state, { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const install = (...paths: string[]) => {
    for (const p of paths) {
      mkdirSync(dirname(join(root, p)), { recursive: true });
      writeFileSync(join(root, p), '#!/bin/sh\n', { mode: 0o755 });
    }
  };
  const env = (origins = ['https://*.gov.tw', 'https://www.example.com:8443']): BrowserEnvironment => ({ root, stateDir: state, origins, caPath: CA });
  const read = (p: string) => JSON.parse(readFileSync(join(root, p), 'utf8'));

  it('turns cardbridge origin patterns into Chromium URL patterns', () => {
    expect(chromiumUrlPattern('https://*.gov.tw')).toBe('https://[*.]gov.tw');
    expect(chromiumUrlPattern('https://www.example.com:8443')).toBe('https://www.example.com:8443');
    expect(chromiumUrlPattern('http://localhost:39444')).toBe('http://localhost:39444');
  });

  it('reports only installed browsers, writes their policies, and removes exactly what it wrote', async () => {
    install('usr/bin/chromium', 'usr/bin/firefox-esr');
    expect((await browserStatus(env())).map((b) => [b.id, b.installed, b.state])).toEqual([
      ['chrome', false, 'not-installed'],
      ['chromium', true, 'missing'],
      ['edge', false, 'not-installed'],
      ['firefox', true, 'missing'],
    ]);
    const written = await allowBrowsers(env());
    expect(written.map((w) => w.id)).toEqual(['chromium', 'firefox']);
    expect(read('etc/chromium/policies/managed/cardbridge.json')).toEqual({ LocalNetworkAccessAllowedForUrls: ['https://[*.]gov.tw', 'https://www.example.com:8443'] });
    expect(read('etc/firefox/policies/policies.json')).toEqual({ policies: { Certificates: { Install: [CA] } } });
    expect(existsSync(join(root, 'etc/opt/chrome'))).toBe(false);
    // Firefox's entry names the system store copy of the CA: stale until `certs trust` put it there.
    expect((await browserStatus(env())).filter((b) => b.installed).map((b) => b.state)).toEqual(['ok', 'stale']);
    install(CA.slice(1));
    expect((await browserStatus(env())).filter((b) => b.installed).map((b) => b.state)).toEqual(['ok', 'ok']);

    // The allow-list changed: Chromium's policy is stale until allow runs again.
    const changed = env(['https://*.gov.tw']);
    expect((await browserStatus(changed)).find((b) => b.id === 'chromium')!.state).toBe('stale');
    await allowBrowsers(changed);
    expect(read('etc/chromium/policies/managed/cardbridge.json').LocalNetworkAccessAllowedForUrls).toEqual(['https://[*.]gov.tw']);

    await removeBrowsers(changed);
    // /etc/chromium existed before? No: every directory allow created is gone again, nothing else.
    expect(existsSync(join(root, 'etc'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/chromium'))).toBe(true);
  });

  it('shares a Firefox policies.json: adds only its own entry, keeps the rest, and leaves the file on remove', async () => {
    install('usr/bin/firefox');
    const shared = { policies: { DisableTelemetry: true, Certificates: { Install: ['/etc/ssl/other.pem'], ImportEnterpriseRoots: false } } };
    mkdirSync(join(root, 'etc/firefox/policies'), { recursive: true });
    writeFileSync(join(root, 'etc/firefox/policies/policies.json'), JSON.stringify(shared));
    await allowBrowsers(env());
    await allowBrowsers(env()); // idempotent
    expect(read('etc/firefox/policies/policies.json')).toEqual({
      policies: { DisableTelemetry: true, Certificates: { Install: ['/etc/ssl/other.pem', CA], ImportEnterpriseRoots: false } },
    });
    await removeBrowsers(env());
    expect(read('etc/firefox/policies/policies.json')).toEqual(shared);
  });

  it('never overwrites a Chromium policy file it does not own or a policies.json it cannot parse', async () => {
    install('usr/bin/chromium', 'usr/bin/firefox');
    mkdirSync(join(root, 'etc/firefox/policies'), { recursive: true });
    writeFileSync(join(root, 'etc/firefox/policies/policies.json'), '{ broken');
    mkdirSync(join(root, 'etc/chromium/policies/managed'), { recursive: true });
    writeFileSync(join(root, 'etc/chromium/policies/managed/site.json'), '{"HomepageLocation":"https://x.example"}');
    await expect(allowBrowsers(env())).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining('policies.json') });
    const status = await browserStatus(env());
    expect(status.find((b) => b.id === 'firefox')!.state).toBe('invalid');
    await removeBrowsers(env());
    expect(readFileSync(join(root, 'etc/firefox/policies/policies.json'), 'utf8')).toBe('{ broken');
    expect(readFileSync(join(root, 'etc/chromium/policies/managed/site.json'), 'utf8')).toContain('HomepageLocation');
  });

  it('cardbridge browsers status|allow|remove with --root and the sites in the state directory', async () => {
    install('opt/google/chrome/chrome');
    await SitesStore.inStateDir(state).allow('https://portal.example.org');
    const run = async (...args: string[]) => {
      const io = captureIO();
      const code = await main(['browsers', ...args, '--root', root, '--state-dir', state], io);
      return { code, ...io };
    };
    const before = await run('status', '--json');
    expect(before.code).toBe(1);
    expect(JSON.parse(before.stdout.join('\n')).browsers.find((b: { id: string }) => b.id === 'chrome').state).toBe('missing');
    expect((await run('allow')).code).toBe(0);
    expect(read('etc/opt/chrome/policies/managed/cardbridge.json').LocalNetworkAccessAllowedForUrls).toEqual(['https://[*.]gov.tw', 'https://portal.example.org']);
    const after = await run('status');
    expect(after.code).toBe(0);
    expect(after.stdout.join('\n')).toMatch(/Google Chrome.*ok/);
    // `sites allow` keeps an existing policy in sync
    process.env.CARDBRIDGE_BROWSERS_ROOT = root;
    try {
      const io = captureIO();
      expect(await main(['sites', 'allow', 'https://second.example.org', '--state-dir', state], io)).toBe(0);
      expect(io.stdout.join('\n')).toContain('Google Chrome');
    } finally {
      delete process.env.CARDBRIDGE_BROWSERS_ROOT;
    }
    expect(read('etc/opt/chrome/policies/managed/cardbridge.json').LocalNetworkAccessAllowedForUrls).toContain('https://second.example.org');
    expect((await run('remove')).code).toBe(0);
    expect(existsSync(join(root, 'etc/opt/chrome'))).toBe(false);
    expect((await run('frobnicate')).code).toBe(2);
  });
});
