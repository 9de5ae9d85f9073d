import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');

/** Every module `entry` loads at start: static value imports, followed through src (type-only imports and `import()` left out). */
function staticGraph(entry: string, packages = new Set<string>()): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)';/gm)) {
      const specifier = match[1]!;
      if (specifier.startsWith('.')) visit(join(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
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

describe('start-up cost', () => {
  it('`cardbridge --version` loads neither fastify nor pkijs nor the PC/SC addon', () => {
    const packages = new Set<string>();
    const graph = staticGraph('cli/main.ts', packages);
    expect(graph.has('version.js') || graph.has('version.ts')).toBe(true);
    expect([...packages].filter((p) => /^(fastify|pkijs|asn1js|pcsclite|ws|pino)/.test(p))).toEqual([]);
  });

  it('the daemon loads a listener’s protocol code only when that listener is enabled', () => {
    const graph = staticGraph('daemon/daemon.ts');
    expect([...graph].filter((f) => /^server\/(native|hipki|nhi)\//.test(f))).toEqual([]);
  });
});
