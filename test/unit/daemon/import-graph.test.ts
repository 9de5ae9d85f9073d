import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');

/** Every module `entry` loads at start: static value imports, followed through src (type-only imports and `import()` left out). */
function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'(\.[^']+)\.js';/gm)) {
      visit(join(dirname(file), `${match[1]}.ts`));
    }
  };
  visit(join(SRC, entry));
  return new Set([...seen].map((f) => relative(SRC, f)));
}

describe('production import graph', () => {
  it.each(['daemon/daemon.ts', 'server/native/app.ts', 'server/hipki/app.ts', 'server/nhi/ws-app.ts', 'server/nhi/http-app.ts'])(
    '%s loads no demo or emulator code until --mock asks for it',
    (entry) => {
      const graph = staticGraph(entry);
      expect(graph.size).toBeGreaterThan(5);
      expect([...graph].filter((f) => f.startsWith('demo/') || f.startsWith('emulator/'))).toEqual([]);
    },
  );

  it('the HiPKI and NHI servers do not reach into the native server', () => {
    for (const entry of ['server/hipki/app.ts', 'server/nhi/ws-app.ts', 'server/nhi/http-app.ts']) {
      expect([...staticGraph(entry)].filter((f) => f.startsWith('server/native/'))).toEqual([]);
    }
  });
});
