import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SitesStore } from '../../../src/config/sites-store.js';

describe('grants per capability', () => {
  let dir: string;
  let store: SitesStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cardbridge-sites-'));
    store = SitesStore.inStateDir(dir, ['https://*.gov.tw']);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const partner = 'https://www.partner.example.com';

  it('an allowed pattern gives every capability', () => {
    for (const capability of ['hipki', 'nhi', 'native'] as const) expect(store.policy(capability).allows('https://www.nhi.gov.tw')).toBe(true);
  });

  it('a HiPKI grant (what /addDomain gives) opens HiPKI only, and survives a new process', async () => {
    expect(await store.grantCapability(partner, 'hipki')).toBe(true);
    expect(await store.grantCapability(partner, 'hipki')).toBe(false);
    const again = SitesStore.inStateDir(dir, ['https://*.gov.tw']);
    expect(again.policy('hipki').allows(partner)).toBe(true);
    expect(again.policy('nhi').allows(partner)).toBe(false);
    expect(again.policy('native').allows(partner)).toBe(false);
    expect(again.policy().allows(partner)).toBe(false); // no capability named: the full allow-list only
    expect(again.allowedOrigins()).not.toContain(partner);
    expect(again.grants()).toEqual({ [partner]: ['hipki'] });
    expect(JSON.parse(readFileSync(join(dir, 'sites.json'), 'utf8')).grants).toEqual({ [partner]: ['hipki'] });
  });

  it('revoking a site removes its grants', async () => {
    await store.grantCapability(partner, 'hipki');
    expect(await store.revoke(partner)).toBe(true);
    expect(store.policy('hipki').allows(partner)).toBe(false);
    expect(store.grants()).toEqual({});
  });

  it('refuses a grant for something that is not an origin', async () => {
    await expect(store.grantCapability('https://*.example.com', 'hipki')).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});

describe('remembered consents expire', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-consent-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const site = 'https://www.example.gov.tw';
  const DAY = 86_400_000;

  it('after the default 90 days the site must ask again', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const store = SitesStore.inStateDir(dir, undefined, undefined, { now: () => now });
    await store.grant(site, 'nhi.read');
    now = new Date(now.getTime() + 89 * DAY);
    expect(store.hasConsent(site, 'nhi.read')).toBe(true);
    now = new Date(now.getTime() + 2 * DAY);
    expect(store.hasConsent(site, 'nhi.read')).toBe(false);
  });

  it('the lifetime is configurable, and the expiry is reported', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const store = SitesStore.inStateDir(dir, undefined, undefined, { consentDays: 7, now: () => now });
    await store.grant(site, 'moica.certificates');
    expect(store.consentExpiry(site, 'moica.certificates')?.toISOString()).toBe('2026-01-08T00:00:00.000Z');
    const later = SitesStore.inStateDir(dir, undefined, undefined, { consentDays: 7, now: () => new Date('2026-01-09T00:00:00Z') });
    expect(later.hasConsent(site, 'moica.certificates')).toBe(false);
    expect(later.consentExpiry(site, 'nhi.read')).toBeUndefined();
  });
});
