import { createRequire } from 'node:module';
import { which } from '../../src/certs/trust.js';
import { describeGated } from './system-rig.js';

/**
 * `it` when every listed program is installed, else `it.skip` with the reason printed — or a
 * failing test when CARDBRIDGE_REQUIRE_SYSTEM_TESTS=1, so CI never skips silently.
 */
export function itWithTools(tools: string[]): jest.It {
  const missing = tools.filter((t) => which(t) === null);
  if (missing.length === 0) return it;
  const reason = `${missing.join(', ')} not installed`;
  if (process.env.CARDBRIDGE_REQUIRE_SYSTEM_TESTS === '1') {
    return ((name: string) => it(name, () => { throw new Error(`CARDBRIDGE_REQUIRE_SYSTEM_TESTS=1 but ${reason}`); })) as unknown as jest.It;
  }
  process.stderr.write(`[cardbridge] skipping tests that need ${reason}\n`);
  return it.skip;
}

/** Why a test needing these programs (and npm packages) cannot run, or undefined. */
export function missingTools(tools: string[], packages: string[] = []): string | undefined {
  const missing = tools.filter((t) => which(t) === null);
  for (const p of packages) {
    try {
      createRequire(import.meta.url).resolve(p);
    } catch {
      missing.push(`the npm package ${p}`);
    }
  }
  return missing.length ? `${missing.join(', ')} not installed` : undefined;
}

/** `describe` gated like describeSystem, on programs and npm packages. */
export function describeWithTools(name: string, tools: string[], packages: string[], body: () => void): void {
  describeGated(name, missingTools(tools, packages), body);
}
