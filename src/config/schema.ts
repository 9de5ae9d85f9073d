import { readFileSync } from 'node:fs';

/**
 * The configuration's JSON Schema (docs/config.schema.json) and a validator for the part of
 * JSON Schema it uses. Hand-written rather than ajv: the schema needs a dozen keywords, the
 * validator is read at every daemon start (ajv compiles code at start-up), and a unit test
 * fails if the schema ever uses a keyword this file does not implement.
 */
export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean;
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
}

/** Next to the docs that describe it: dist/config/ and src/config/ are both two levels down. */
export const CONFIG_SCHEMA_URL = new URL('../../docs/config.schema.json', import.meta.url);
export const CONFIG_SCHEMA = JSON.parse(readFileSync(CONFIG_SCHEMA_URL, 'utf8')) as JsonSchema;

const ARTICLE: Record<NonNullable<JsonSchema['type']>, string> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
};

function typeOk(type: NonNullable<JsonSchema['type']>, value: unknown): boolean {
  switch (type) {
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** The first problem with `value`, naming its key (e.g. "listeners.hipki.port must be at most 65535"), or undefined. */
export function validate(value: unknown, schema: JsonSchema, path = ''): string | undefined {
  const name = path || 'the configuration';
  if (schema.type && !typeOk(schema.type, value)) return `${name} must be ${ARTICLE[schema.type]} (got ${JSON.stringify(value)})`;
  if (schema.enum && !schema.enum.includes(value)) return `${name} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')} (got ${JSON.stringify(value)})`;
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return `${name} must be at least ${schema.minimum} (got ${value})`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `${name} must be more than ${schema.exclusiveMinimum} (got ${value})`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${name} must be at most ${schema.maximum} (got ${value})`;
  }
  if (typeof value === 'string' && schema.minLength !== undefined && value.length < schema.minLength) return `${name} must not be empty`;
  if (Array.isArray(value) && schema.items) {
    for (const [i, item] of value.entries()) {
      const problem = validate(item, schema.items, `${path}[${i}]`);
      if (problem) return problem;
    }
  }
  if (schema.type === 'object' && schema.properties) {
    const record = value as Record<string, unknown>;
    const known = Object.keys(schema.properties);
    for (const key of Object.keys(record)) {
      const child = schema.properties[key];
      if (!child) {
        if (schema.additionalProperties === false) return `unknown setting "${join(path, key)}" (known: ${known.join(', ')})`;
        continue;
      }
      const problem = validate(record[key], child, join(path, key));
      if (problem) return problem;
    }
  }
  return undefined;
}

/** The value the schema's defaults describe (objects built from their properties' defaults). */
export function schemaDefaults(schema: JsonSchema): unknown {
  if (schema.default !== undefined) return structuredClone(schema.default);
  if (schema.type !== 'object' || !schema.properties) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(schema.properties)) {
    const value = schemaDefaults(child);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** `defaults` with every key of a validated `value` laid over it, objects merged key by key. */
export function withDefaults(defaults: unknown, value: unknown): unknown {
  if (typeOk('object', defaults) && typeOk('object', value)) {
    const out = { ...(defaults as Record<string, unknown>) };
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) out[key] = withDefaults(out[key], v);
    return out;
  }
  return value === undefined ? defaults : value;
}
