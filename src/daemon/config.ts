import { readFileSync } from 'node:fs';
import { CardBridgeError } from '../errors.js';
import { DEFAULT_ALLOWED_ORIGINS } from '../config/sites-store.js';
import { validateOriginPattern } from '../server/security/origin-policy.js';
import { DEFAULT_LISTENERS, type ListenerName } from '../config/listeners.js';

/** The daemon's settings: a JSON file given with --config, every field optional. */
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
}

export const DEFAULT_CONFIG: DaemonConfig = {
  allowedOrigins: [...DEFAULT_ALLOWED_ORIGINS],
  listeners: Object.fromEntries(DEFAULT_LISTENERS.map((l) => [l.name, { enabled: true, port: l.port }])) as DaemonConfig['listeners'],
  nhiSam: { host: 'cloudicap.nhi.gov.tw', port: 443, connectTimeoutMs: 5000, stepTimeoutMs: 10_000 },
  logLevel: 'info',
  rateLimit: { perSecond: 20, burst: 40 },
};

function bad(file: string, message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `${file}: ${message}`, { hint: 'See docs/operations.md for the configuration file.' });
}

function port(file: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) throw bad(file, `${name} must be a port number (1-65535)`);
  return value as number;
}

/** Reads and checks a config file; unknown keys are errors, so typos do not pass silently. */
export function loadConfig(file?: string): DaemonConfig {
  if (!file) return structuredClone(DEFAULT_CONFIG);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw bad(file, err.code === 'ENOENT' ? 'no such file' : `not valid JSON (${err.message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, 'expected a JSON object');
  const input = raw as Record<string, unknown>;
  const known = ['stateDir', 'allowedOrigins', 'listeners', 'nhiSam', 'logLevel', 'rateLimit'];
  for (const key of Object.keys(input)) if (!known.includes(key)) throw bad(file, `unknown setting "${key}" (known: ${known.join(', ')})`);
  const config = structuredClone(DEFAULT_CONFIG);
  if (input.stateDir !== undefined) {
    if (typeof input.stateDir !== 'string' || !input.stateDir) throw bad(file, 'stateDir must be a path');
    config.stateDir = input.stateDir;
  }
  if (input.allowedOrigins !== undefined) {
    if (!Array.isArray(input.allowedOrigins)) throw bad(file, 'allowedOrigins must be a list of origin patterns');
    config.allowedOrigins = input.allowedOrigins.map((p) => {
      if (typeof p !== 'string') throw bad(file, 'allowedOrigins must be a list of strings');
      try {
        return validateOriginPattern(p);
      } catch (e) {
        throw bad(file, (e as Error).message);
      }
    });
  }
  const listeners = (input.listeners ?? {}) as Record<string, Record<string, unknown>>;
  if (typeof listeners !== 'object' || Array.isArray(listeners)) throw bad(file, 'listeners must be an object');
  for (const [name, value] of Object.entries(listeners)) {
    const spec = DEFAULT_LISTENERS.find((l) => l.name === name);
    if (!spec) throw bad(file, `unknown listener "${name}" (known: ${DEFAULT_LISTENERS.map((l) => l.name).join(', ')})`);
    if (!value || typeof value !== 'object') throw bad(file, `listeners.${name} must be an object like {"enabled": true, "port": ${spec.port}}`);
    config.listeners[spec.name] = {
      enabled: value.enabled === undefined ? true : value.enabled === true,
      port: port(file, `listeners.${name}.port`, value.port, spec.port),
    };
  }
  const sam = (input.nhiSam ?? {}) as Record<string, unknown>;
  if (sam.host !== undefined && (typeof sam.host !== 'string' || !sam.host)) throw bad(file, 'nhiSam.host must be a host name');
  config.nhiSam = {
    host: (sam.host as string | undefined) ?? config.nhiSam.host,
    port: port(file, 'nhiSam.port', sam.port, config.nhiSam.port),
    connectTimeoutMs: typeof sam.connectTimeoutMs === 'number' ? sam.connectTimeoutMs : config.nhiSam.connectTimeoutMs,
    stepTimeoutMs: typeof sam.stepTimeoutMs === 'number' ? sam.stepTimeoutMs : config.nhiSam.stepTimeoutMs,
  };
  if (input.logLevel !== undefined) {
    const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
    if (typeof input.logLevel !== 'string' || !levels.includes(input.logLevel)) throw bad(file, `logLevel must be one of ${levels.join(', ')}`);
    config.logLevel = input.logLevel as DaemonConfig['logLevel'];
  }
  if (input.rateLimit !== undefined) {
    const limit = input.rateLimit as Record<string, unknown>;
    const positive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
    if (!limit || typeof limit !== 'object' || Array.isArray(limit)) throw bad(file, 'rateLimit must be an object like {"perSecond": 20, "burst": 40}');
    for (const key of Object.keys(limit)) if (key !== 'perSecond' && key !== 'burst') throw bad(file, `unknown setting "rateLimit.${key}" (known: perSecond, burst)`);
    if (limit.perSecond !== undefined && !positive(limit.perSecond)) throw bad(file, 'rateLimit.perSecond must be a positive number');
    if (limit.burst !== undefined && !positive(limit.burst)) throw bad(file, 'rateLimit.burst must be a positive number');
    config.rateLimit = {
      perSecond: (limit.perSecond as number | undefined) ?? config.rateLimit.perSecond,
      burst: (limit.burst as number | undefined) ?? config.rateLimit.burst,
    };
  }
  return config;
}
