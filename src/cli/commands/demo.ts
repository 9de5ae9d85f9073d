import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../../daemon/config.js';
import { startDaemon } from '../../daemon/daemon.js';
import { createLogger } from '../../daemon/logger.js';
import { DEMO_CARD_KINDS, DEMO_MOICA_PIN, type DemoCardKind } from '../../demo/mock-control.js';
import { DEMO_SITE_PORT, buildDemoSite } from '../../demo/site/demo-site.js';
import type { RegistryEvent } from '../../readers/types.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, UsageError, type CliCommand, type CliIO } from '../io.js';
import { formatTable } from '../table.js';
import { describeCardType } from './readers.js';

function describeEvent(event: RegistryEvent): string {
  switch (event.type) {
    case 'reader-added':
      return `reader added: ${event.reader}`;
    case 'reader-removed':
      return `reader removed: ${event.reader}`;
    case 'card-inserted':
      return `card inserted in ${event.reader}: ${describeCardType(event.card.type)}`;
    case 'card-removed':
      return `card removed from ${event.reader}`;
    case 'service-lost':
      return `smart-card service lost: ${event.message}`;
    case 'service-restored':
      return 'smart-card service back';
  }
}

/** The demo's own state (its development CA), apart from a real installation's. */
export function demoStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'cardbridge-demo');
}

const HELP = [
  'Commands: readers | insert <reader number> <nhi|moica-gen1|moica-gen2> | remove <reader number> | reset-pin <reader number> | quit',
];

export const demoCommand: CliCommand = {
  name: 'demo',
  usage: 'cardbridge demo [--state-dir DIR] [--config FILE] [--site-port N]',
  help: [
    '',
    'Options:',
    '  --state-dir DIR  where the demo keeps its CA and allow-list (default: the usual state directory)',
    '  --config FILE    a configuration file (docs/configuration.md; default: the built-in defaults)',
    "  --site-port N    the demo site's port (default 39444)",
    '',
    'Example: cardbridge demo --state-dir /tmp/cardbridge-demo',
  ],
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { 'state-dir': { type: 'string' }, config: { type: 'string' }, 'site-port': { type: 'string' } }, true);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const sitePort = values['site-port'] === undefined ? DEMO_SITE_PORT : Number(values['site-port']);
    if (!Number.isInteger(sitePort) || sitePort < 1 || sitePort > 65535) throw new UsageError('--site-port takes a port number');
    const config = loadConfig(values.config);
    const stateDir = values['state-dir'] ?? demoStateDir();
    // JSON logs would drown the demo's own lines (which say what the warnings would); errors still show.
    const daemon = await startDaemon({ config, mock: true, logger: createLogger('error', process.stderr), stateDir, extraOrigins: [`https://localhost:${sitePort}`] });
    const native = daemon.listeners.find((l) => l.name === 'native' && l.url);
    let site: FastifyInstance | undefined;
    if (native?.url && daemon.mock) {
      site = await buildDemoSite({
        port: sitePort,
        tls: daemon.tls,
        bridge: native.url,
        hipki: `http://localhost:${config.listeners.hipki.port}`,
        samPublicKey: daemon.mock.sam.publicKey,
      });
      try {
        await site.listen({ port: sitePort, host: '127.0.0.1' });
      } catch (e) {
        await site.close();
        site = undefined;
        io.err(`cardbridge demo: the demo site could not use port ${sitePort} (${(e as Error).message}); the daemon runs without it`);
      }
    }
    const control = daemon.mock!.control;
    const printReaders = (out: CliIO) => {
      const rows = control.state().readers.map((r, i) => [String(i), r.name, r.card ?? 'empty', r.triesLeft === undefined ? '' : `${r.triesLeft} PIN tries`]);
      for (const line of formatTable(['#', 'READER', 'CARD', ''], rows)) out.out(`  ${line}`);
    };

    io.out('cardbridge demo — mock readers, virtual cards, a demo relying site');
    if (site) io.out(`  Demo site     https://localhost:${sitePort}`);
    for (const l of daemon.listeners) io.out(`  ${l.name.padEnd(12)}  ${l.url ?? `not started: ${l.error}`}`);
    io.out(`  Cards         健保卡 of 王小明 and 自然人憑證 of 測試一 (fake identities); MOICA PIN ${DEMO_MOICA_PIN}`);
    printReaders(io);
    io.out('');
    io.out('Browsers must trust the demo’s local CA to open these pages (your user only, no root):');
    io.out(`  npx cardbridge certs trust --state-dir ${daemon.stateDir} --system-store none`);
    io.out('Press Ctrl+C to stop.');
    daemon.registry.on('event', (event) => io.out(`${new Date().toISOString().slice(11, 23)}  ${describeEvent(event)}`));

    const done = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      const stdin = io.stdin;
      if (!stdin?.isTTY) return;
      for (const line of HELP) io.out(line);
      const rl = createInterface({ input: stdin, prompt: 'demo> ' });
      rl.prompt();
      rl.on('line', (line) => {
        const [verb, number, kind] = line.trim().split(/\s+/);
        const reader = control.state().readers[Number(number)]?.name;
        const act = async () => {
          if (verb === 'readers') return printReaders(io);
          if (verb === 'quit' || verb === 'exit') return rl.close();
          if (!reader || !['insert', 'remove', 'reset-pin'].includes(verb ?? '')) return HELP.forEach((l) => io.out(l));
          if (verb === 'insert') {
            if (!DEMO_CARD_KINDS.includes(kind as DemoCardKind)) return io.out(`insert takes a card kind: ${DEMO_CARD_KINDS.join(', ')}`);
            return control.insert(reader, kind as DemoCardKind);
          }
          if (verb === 'remove') return control.remove(reader);
          return control.resetPin(reader);
        };
        act()
          .catch((e: Error) => io.out(e.message))
          .finally(() => rl.prompt());
      });
      rl.on('close', resolve);
    });
    // Nothing else may hold the event loop open when stdin is not a terminal (e.g. under CI).
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await done;
    clearInterval(keepAlive);
    await site?.close();
    await daemon.stop();
    io.out('demo stopped');
    return EXIT.ok;
  },
};
