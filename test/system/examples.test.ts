import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(300_000);

const ROOT = resolve('.');
const EXAMPLES = ['native-login', 'hipki-login'];

/**
 * Each example's own browser test (`node --test`, what the README tells site developers to
 * run), in a copy of the example whose node_modules has this checkout as `cardbridge` — the
 * way `npm install <checkout>` would link it. test/system/package.test.ts does the same with
 * the packed tarball installed by npm.
 */
describeWithTools('examples/: each relying site’s browser test passes against this checkout', ['chromium'], ['playwright-core'], () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'cardbridge-examples-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const example of EXAMPLES) {
    it(`examples/${example}: node --test`, () => {
      const copy = join(dir, example);
      cpSync(join(ROOT, 'examples', example), copy, { recursive: true });
      mkdirSync(join(copy, 'node_modules'));
      symlinkSync(ROOT, join(copy, 'node_modules', 'cardbridge'));
      const playwright = dirname(createRequire(join(ROOT, 'package.json')).resolve('playwright-core/package.json'));
      symlinkSync(playwright, join(copy, 'node_modules', 'playwright-core'));
      const run = spawnSync(process.execPath, ['--test'], {
        cwd: copy,
        encoding: 'utf8',
        timeout: 240_000,
        env: { ...process.env, CHROMIUM_PATH: '/usr/bin/chromium', HOME: copy },
      });
      const output = `${run.stdout}\n${run.stderr}`;
      expect({ status: run.status, fail: /# fail 0/.test(output) ? 0 : output }).toEqual({ status: 0, fail: 0 });
      expect(output).toMatch(/# pass [1-9]/);
    });
  }
});
