import { readFileSync, statSync } from 'node:fs';
import { chown, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CardBridgeError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { OriginPolicy, canonicalOrigin, validateOriginPattern } from './origin-policy.js';

/** What a site may do once the user said yes in cardbridge's window. */
export type ConsentScope = 'nhi.read' | 'moica.certificates';
export const CONSENT_SCOPES: readonly ConsentScope[] = ['nhi.read', 'moica.certificates'];

/**
 * What a listener offers a site: HiPKI (61161: certificates, signing after a PIN on the
 * page), NHI (7777/59001/59002: the 健保卡 holder data), native (39443). A pattern on the
 * allow-list gives all three; a grant gives one, to one exact origin.
 */
export type Capability = 'hipki' | 'nhi' | 'native';
export const CAPABILITIES: readonly Capability[] = ['hipki', 'nhi', 'native'];

/** How long a remembered consent lasts unless configured (config `consentDays`). */
export const DEFAULT_CONSENT_DAYS = 90;
const DAY_MS = 86_400_000;

export interface SitesStoreOptions {
  /** Days a remembered consent lasts; then the site must ask again (default 90). */
  consentDays?: number;
  now?: () => Date;
}

export const DEFAULT_ALLOWED_ORIGINS = ['https://*.gov.tw'] as const;
export const SITES_FILE = 'sites.json';

interface SitesFile {
  allowedOrigins: string[];
  /** origin → scope → ISO time the user consented */
  consents: Record<string, Partial<Record<ConsentScope, string>>>;
  /** exact origin → the capabilities granted to it alone (e.g. HiPKI through /addDomain) */
  grants: Record<string, Capability[]>;
}

function grantsOf(value: unknown): Record<string, Capability[]> {
  if (!value || typeof value !== 'object') return {};
  const grants: Record<string, Capability[]> = {};
  for (const [origin, list] of Object.entries(value as Record<string, unknown>)) {
    const capabilities = Array.isArray(list) ? list.filter((c): c is Capability => CAPABILITIES.includes(c as Capability)) : [];
    if (canonicalOrigin(origin) === origin && capabilities.length > 0) grants[origin] = capabilities;
  }
  return grants;
}

/**
 * The persisted allow-list and the user's remembered consents, in the state directory. The
 * daemon and `cardbridge sites` share the file: every read checks its modification time, so a
 * change made by the CLI applies to the running daemon at once.
 */
export class SitesStore {
  private cached: SitesFile | undefined;
  private cachedMtime = -1;
  private policyCache: { file: SitesFile; policies: Map<Capability | 'all', OriginPolicy> } | undefined;

  constructor(
    readonly path: string,
    private readonly defaults: readonly string[] = DEFAULT_ALLOWED_ORIGINS,
    /** Origins allowed in this run only (demo mode), never written to the file. */
    private readonly extraOrigins: readonly string[] = [],
    private readonly options: SitesStoreOptions = {},
  ) {}

  static inStateDir(stateDir: string, defaults?: readonly string[], extraOrigins?: readonly string[], options?: SitesStoreOptions): SitesStore {
    return new SitesStore(join(stateDir, SITES_FILE), defaults, extraOrigins, options);
  }

  private read(): SitesFile {
    let mtime = 0;
    try {
      mtime = statSync(this.path).mtimeMs;
    } catch {
      mtime = 0; // no file yet: defaults
    }
    if (this.cached && mtime === this.cachedMtime) return this.cached;
    let file: SitesFile = { allowedOrigins: [...this.defaults], consents: {}, grants: {} };
    if (mtime !== 0) {
      try {
        const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<SitesFile>;
        file = {
          allowedOrigins: Array.isArray(parsed.allowedOrigins) ? parsed.allowedOrigins.filter((p): p is string => typeof p === 'string') : [...this.defaults],
          consents: parsed.consents && typeof parsed.consents === 'object' ? parsed.consents : {},
          grants: grantsOf(parsed.grants),
        };
      } catch (e) {
        throw new CardBridgeError('InvalidInput', `${this.path} is not valid JSON: ${(e as Error).message}`, {
          hint: `Fix or delete ${this.path} (deleting it restores the default allow-list ${this.defaults.join(', ')}).`,
        });
      }
    }
    this.cached = file;
    this.cachedMtime = mtime;
    return file;
  }

  private async write(file: SitesFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    // "sudo cardbridge sites allow" on a system install: the file stays the service user's,
    // or the daemon (running as that user) could no longer read its allow-list.
    const owner = await stat(dirname(this.path));
    if (process.getuid?.() === 0 && owner.uid !== 0) await chown(this.path, owner.uid, owner.gid);
    this.cached = undefined;
  }

  allowedOrigins(): string[] {
    return [...this.read().allowedOrigins];
  }

  /**
   * The sites a listener offering `capability` answers: the allow-list plus the origins granted
   * that capability alone. Without a capability, the allow-list only. Rebuilt only when the
   * file changed.
   */
  policy(capability?: Capability): OriginPolicy {
    const file = this.read();
    if (this.policyCache?.file !== file) this.policyCache = { file, policies: new Map() };
    const key = capability ?? 'all';
    let policy = this.policyCache.policies.get(key);
    if (!policy) {
      const valid = file.allowedOrigins.filter((p) => {
        try {
          validateOriginPattern(p);
          return true;
        } catch {
          return false; // one bad line must not open or close everything else
        }
      });
      const granted = capability ? Object.entries(file.grants).filter(([, list]) => list.includes(capability)).map(([origin]) => origin) : [];
      policy = new OriginPolicy([...valid, ...this.extraOrigins, ...granted]);
      this.policyCache.policies.set(key, policy);
    }
    return policy;
  }

  /** Grants one capability to one exact origin; false when it already had it. */
  async grantCapability(origin: string, capability: Capability): Promise<boolean> {
    const canonical = canonicalOrigin(origin);
    if (!canonical || canonical.includes('*') || canonical !== origin.trim().replace(/\/$/, '')) {
      throw new CardBridgeError('InvalidInput', `A grant needs one exact origin such as https://www.example.gov.tw, not "${origin}"`);
    }
    const file = this.read();
    const current = file.grants[canonical] ?? [];
    if (current.includes(capability)) return false;
    await this.write({ ...file, grants: { ...file.grants, [canonical]: [...current, capability] } });
    return true;
  }

  /** Origins with capabilities of their own (not through the allow-list). */
  grants(): Record<string, Capability[]> {
    return structuredClone(this.read().grants);
  }

  async allow(pattern: string): Promise<boolean> {
    const valid = validateOriginPattern(pattern);
    const file = this.read();
    if (file.allowedOrigins.includes(valid)) return false;
    await this.write({ ...file, allowedOrigins: [...file.allowedOrigins, valid] });
    return true;
  }

  /** Removes a pattern from the allow-list, and every consent and grant of that origin. */
  async revoke(originOrPattern: string): Promise<boolean> {
    const file = this.read();
    const key = canonicalOrigin(originOrPattern) ?? originOrPattern.trim();
    const allowedOrigins = file.allowedOrigins.filter((p) => p !== originOrPattern.trim() && p !== key);
    const consents = { ...file.consents };
    const grants = { ...file.grants };
    const hadConsent = key in consents || key in grants;
    delete consents[key];
    delete grants[key];
    if (allowedOrigins.length === file.allowedOrigins.length && !hadConsent) return false;
    await this.write({ allowedOrigins, consents, grants });
    return true;
  }

  /** A remembered consent counts until it expires (`consentDays` after it was given). */
  hasConsent(origin: string, scope: ConsentScope): boolean {
    const expiry = this.consentExpiry(origin, scope);
    return expiry !== undefined && expiry.getTime() > this.now().getTime();
  }

  /** When a remembered consent expires; undefined when there is none (or its date is unreadable). */
  consentExpiry(origin: string, scope: ConsentScope): Date | undefined {
    const at = Date.parse(this.read().consents[origin]?.[scope] ?? '');
    if (!Number.isFinite(at)) return undefined;
    return new Date(at + this.consentDays * DAY_MS);
  }

  /** Days a remembered consent lasts. */
  get consentDays(): number {
    return this.options.consentDays ?? DEFAULT_CONSENT_DAYS;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  async grant(origin: string, scope: ConsentScope, at = this.now()): Promise<void> {
    const file = this.read();
    const consents = { ...file.consents, [origin]: { ...file.consents[origin], [scope]: at.toISOString() } };
    await this.write({ ...file, consents });
  }

  consents(): Record<string, Partial<Record<ConsentScope, string>>> {
    return structuredClone(this.read().consents);
  }
}
