#!/usr/bin/env node
// The CLI is TypeScript compiled to dist/ by `npm install` (the prepare script). A checkout
// whose dist/ is missing gets a clear instruction instead of a module-not-found trace.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('cardbridge: not built yet. Run "npm install" (or "npm run build") in the checkout first.\n');
  process.exit(3);
}
const { main } = await import(entry.href);
// Exit explicitly: the PC/SC addon keeps native handles open after its context is closed.
process.exit(await main(process.argv.slice(2)));
