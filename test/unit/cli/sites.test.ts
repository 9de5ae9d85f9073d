import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { captureIO } from '../../helpers/capture-io.js';
import { describeGated } from '../../helpers/system-rig.js';

describe('cardbridge sites', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-sites-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (...args: string[]) => {
    const io = captureIO();
    const code = await main(['sites', ...args, '--state-dir', dir], io);
    return { code, ...io };
  };

  it('lists the default allow-list, allows and revokes sites, and the daemon sees changes', async () => {
    const store = SitesStore.inStateDir(dir);
    expect(store.policy().allows('https://example.com')).toBe(false);
    expect((await run('list')).stdout).toContain('  https://*.gov.tw');
    expect(await run('allow', 'https://example.com')).toMatchObject({ code: 0, stdout: ['Allowed https://example.com.'] });
    expect(store.policy().allows('https://example.com')).toBe(true);
    expect((await run('allow', 'https://example.com')).stdout).toEqual(['https://example.com was already allowed.']);
    await store.grant('https://example.com', 'nhi.read');
    const listed = JSON.parse((await run('list', '--json')).stdout.join('\n'));
    expect(listed.allowedOrigins).toEqual(['https://*.gov.tw', 'https://example.com']);
    expect(Object.keys(listed.consents)).toEqual(['https://example.com']);
    expect((await run('revoke', 'https://example.com')).code).toBe(0);
    expect(store.policy().allows('https://example.com')).toBe(false);
    expect(store.hasConsent('https://example.com', 'nhi.read')).toBe(false);
    expect((await run('revoke', 'https://example.com')).code).toBe(1);
  });

  it('lists the sites granted HiPKI only (from /addDomain), and revoke removes the grant', async () => {
    const store = SitesStore.inStateDir(dir);
    await store.grantCapability('https://www.partner.example.com', 'hipki');
    const text = (await run('list')).stdout;
    expect(text).toContain('Sites with one capability only (HiPKI: granted in cardbridge’s /addDomain window):');
    expect(text).toContain('  https://www.partner.example.com  hipki');
    expect(JSON.parse((await run('list', '--json')).stdout.join('\n')).grants).toEqual({ 'https://www.partner.example.com': ['hipki'] });
    expect((await run('revoke', 'https://www.partner.example.com')).code).toBe(0);
    expect(store.grants()).toEqual({});
  });

  it('refuses bad patterns and actions with usage errors', async () => {
    expect(await run('allow', 'example.com')).toMatchObject({ code: 1, stderr: [expect.stringContaining('Invalid origin pattern'), '  輸入的資料不正確 (Invalid input)'] });
    expect((await run('allow')).code).toBe(2);
    expect((await run('frobnicate')).stderr[0]).toContain('unknown action "frobnicate"');
  });
});

describeGated('cardbridge sites run by root on a system install', process.getuid?.() === 0 ? undefined : 'needs root (chown)', () => {
  it('leaves sites.json to the state directory\'s owner, so the service can still read it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardbridge-sites-'));
    try {
      chownSync(dir, 65534, 65534); // the service user's directory
      expect(await main(['sites', 'allow', 'https://example.com', '--state-dir', dir], captureIO())).toBe(0);
      const file = statSync(join(dir, 'sites.json'));
      expect([file.uid, file.gid, file.mode & 0o777]).toEqual([65534, 65534, 0o600]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
