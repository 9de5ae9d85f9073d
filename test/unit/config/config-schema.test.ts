import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_SCHEMA, schemaDefaults, type JsonSchema } from '../../../src/config/schema.js';
import { DEFAULT_CONFIG, loadConfig } from '../../../src/daemon/config.js';
import { DEFAULT_LISTENERS } from '../../../src/config/listeners.js';

const repo = new URL('../../../', import.meta.url).pathname;

/** Every leaf setting of the schema: its dotted key, JSON type and default. */
function leaves(schema: JsonSchema, prefix = ''): { key: string; type: string; default: unknown; enum?: unknown[] }[] {
  if (schema.type === 'object' && schema.properties) {
    return Object.entries(schema.properties).flatMap(([name, child]) => leaves(child, prefix ? `${prefix}.${name}` : name));
  }
  return [{ key: prefix, type: schema.type === 'array' ? `array of ${schema.items!.type}` : String(schema.type), default: schema.default, ...(schema.enum ? { enum: schema.enum } : {}) }];
}

/** The rows of docs/configuration.md's "Settings" table: | `key` | type | `default` or — | meaning | */
function documented(): Map<string, { type: string; default: string }> {
  const text = readFileSync(join(repo, 'docs', 'configuration.md'), 'utf8').split(/^## Settings$/m)[1]!.split(/^## /m)[0]!;
  const rows = new Map<string, { type: string; default: string }>();
  for (const line of text.split('\n')) {
    const m = /^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1]!, { type: m[2]!.trim(), default: m[3]!.trim() });
  }
  return rows;
}

describe('the configuration schema (docs/config.schema.json)', () => {
  it('has the defaults the daemon uses, listener ports included', () => {
    expect(schemaDefaults(CONFIG_SCHEMA)).toEqual(DEFAULT_CONFIG);
    for (const l of DEFAULT_LISTENERS) expect(CONFIG_SCHEMA.properties!.listeners!.properties![l.name]!.properties!.port!.default).toBe(l.port);
  });

  it('and docs/configuration.md list the same settings with the same types and defaults', () => {
    const doc = documented();
    const schema = leaves(CONFIG_SCHEMA);
    expect([...doc.keys()].sort()).toEqual(schema.map((l) => l.key).sort());
    for (const leaf of schema) {
      const row = doc.get(leaf.key)!;
      expect([leaf.key, row.type.split(':')[0]]).toEqual([leaf.key, leaf.type]);
      expect([leaf.key, row.default]).toEqual([leaf.key, leaf.default === undefined ? '—' : `\`${JSON.stringify(leaf.default)}\``]);
      for (const value of leaf.enum ?? []) expect([leaf.key, row.type]).toEqual([leaf.key, expect.stringContaining(String(value))]);
    }
  });
});

describe('loadConfig validates against the schema and names the bad key', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = (content: string) => {
    const file = join(dir, 'config.json');
    writeFileSync(file, content);
    return () => loadConfig(file);
  };

  it.each([
    ['a non-boolean enabled', '{"listeners":{"hipki":{"enabled":"no"}}}', 'listeners.hipki.enabled must be a boolean'],
    ['a non-integer timeout', '{"nhiSam":{"connectTimeoutMs":"5s"}}', 'nhiSam.connectTimeoutMs must be an integer'],
    ['a zero timeout', '{"nhiSam":{"stepTimeoutMs":0}}', 'nhiSam.stepTimeoutMs must be at least 1'],
    ['a port too high', '{"listeners":{"nhi-ws":{"port":70000}}}', 'listeners.nhi-ws.port must be at most 65535'],
    ['an unknown nhiSam key', '{"nhiSam":{"hostname":"x"}}', 'unknown setting "nhiSam.hostname"'],
    ['a listener typo', '{"listeners":{"hipky":{}}}', 'unknown setting "listeners.hipky" (known: native, hipki, nhi-ws, nhi-http, nhi-https)'],
    ['a non-string origin', '{"allowedOrigins":[1]}', 'allowedOrigins[0] must be a string'],
    ['a level not in the list', '{"logLevel":"loud"}', 'logLevel must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"'],
  ])('rejects %s', (_name, content, message) => {
    expect(load(content)).toThrow(message);
  });

  it('points to docs/configuration.md', () => {
    expect(load('{"x":1}')).toThrow(expect.objectContaining({ hint: expect.stringContaining('docs/configuration.md') }));
  });

  it('understands every keyword the schema uses (a new keyword must be implemented, not ignored)', () => {
    const supported = new Set(['$schema', '$id', 'title', 'description', 'type', 'properties', 'additionalProperties', 'items', 'enum', 'default', 'minimum', 'maximum', 'exclusiveMinimum', 'minLength']);
    const walk = (s: JsonSchema): string[] => [
      ...Object.keys(s).filter((k) => !supported.has(k)),
      ...Object.values(s.properties ?? {}).flatMap(walk),
      ...(s.items ? walk(s.items) : []),
    ];
    expect(walk(CONFIG_SCHEMA)).toEqual([]);
  });
});
