import { existsSync, readFileSync } from 'node:fs';
import { CardBridgeError } from '../errors.js';
import { DEFAULT_ALLOWED_ORIGINS, DEFAULT_CONSENT_DAYS } from '../config/sites-store.js';
import { validateOriginPattern } from '../config/origin-policy.js';
import { DEFAULT_LISTENERS, type ListenerName } from '../config/listeners.js';
import { CONFIG_SCHEMA, validate, withDefaults } from '../config/schema.js';

/** The daemon's settings: a JSON file (docs/configuration.md), every field optional. */
export interface DaemonConfig {
  stateDir?: string;
  /** The allow-list used until `cardbridge sites` writes one (default https://*.gov.tw). */
  allowedOrigins: string[];
  /** Each listener of DESIGN.md; any can be disabled or moved. */
  listeners: Record<ListenerName, { enabled: boolean; port: number }>;
  /** NHI's cloud SAM (official: cloudicap.nhi.gov.tw:443, raw TCP). */
  nhiSam: { host: string; port: number; connectTimeoutMs: number; stepTimeoutMs: number };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * Each listener's token bucket per calling origin (requests without an Origin share one
   * bucket). The defaults suit a person at a browser; the benchmark raises them.
   */
  rateLimit: { perSecond: number; burst: number };
  /** Days a consent the user chose to remember lasts before the site must ask again. */
  consentDays: number;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  allowedOrigins: [...DEFAULT_ALLOWED_ORIGINS],
  listeners: Object.fromEntries(DEFAULT_LISTENERS.map((l) => [l.name, { enabled: true, port: l.port }])) as DaemonConfig['listeners'],
  nhiSam: { host: 'cloudicap.nhi.gov.tw', port: 443, connectTimeoutMs: 5000, stepTimeoutMs: 10_000 },
  logLevel: 'info',
  rateLimit: { perSecond: 20, burst: 40 },
  consentDays: DEFAULT_CONSENT_DAYS,
};

/** Where the system service's configuration lives (the unit passes it with --config). */
export const SYSTEM_CONFIG_FILE = '/etc/cardbridge/config.json';

function bad(file: string, message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `${file}: ${message}`, {
    hint: 'docs/configuration.md lists every setting (the schema is docs/config.schema.json).',
  });
}

/** The file to read: --config FILE, else /etc/cardbridge/config.json when it exists, else none (defaults). */
export function configFile(option: string | undefined, systemFile = SYSTEM_CONFIG_FILE): string | undefined {
  if (option) return option;
  return existsSync(systemFile) ? systemFile : undefined;
}

/**
 * Reads a config file and checks it against docs/config.schema.json: unknown keys and wrong
 * types are errors that name the key, so typos do not pass silently.
 */
export function loadConfig(file?: string): DaemonConfig {
  if (!file) return structuredClone(DEFAULT_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw bad(file, err.code === 'ENOENT' ? 'no such file' : err.code ? `cannot read it (${err.message})` : `not valid JSON (${err.message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, 'expected a JSON object');
  const problem = validate(raw, CONFIG_SCHEMA);
  if (problem) throw bad(file, problem);
  const config = withDefaults(structuredClone(DEFAULT_CONFIG), raw) as DaemonConfig;
  // Origin patterns have a grammar of their own, beyond what the schema says.
  config.allowedOrigins = config.allowedOrigins.map((p, i) => {
    try {
      return validateOriginPattern(p);
    } catch (e) {
      throw bad(file, `allowedOrigins[${i}]: ${(e as Error).message}`);
    }
  });
  return config;
}
