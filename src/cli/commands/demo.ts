import { createInterface } from 'node:readline';
import { DEMO_READERS, createDemoCard, createDemoRegistry } from '../../demo/demo-readers.js';
import type { RegistryEvent } from '../../readers/types.js';
import { EXIT, type CliCommand, type CliIO } from '../io.js';
import { describeCardType } from './readers.js';
import { formatTable } from '../table.js';

function describeEvent(event: RegistryEvent): string {
  switch (event.type) {
    case 'reader-added':
      return `reader added: ${event.reader}`;
    case 'reader-removed':
      return `reader removed: ${event.reader}`;
    case 'card-inserted':
      return `card inserted in ${event.reader}: ${describeCardType(event.card.type)} (ATR ${event.card.atr})`;
    case 'card-removed':
      return `card removed from ${event.reader}`;
    case 'service-lost':
      return `smart-card service lost: ${event.message}`;
    case 'service-restored':
      return 'smart-card service back';
  }
}

const HELP = [
  'Commands: readers | insert <0|1> | remove <0|1> | help | quit',
  '(the demo cards live in mock readers inside this process; nothing touches real hardware)',
];

export const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'Run the demo: mock readers with virtual cards, live reader and card events',
  usage: 'cardbridge demo',
  async run(args, io) {
    if (args.length > 0) {
      io.err(`cardbridge demo: unexpected argument "${args[0]}"`);
      return EXIT.usage;
    }
    const registry = await createDemoRegistry();
    const printReaders = (out: CliIO) => {
      const rows = registry.readers().map((r) => [r.name, r.card ? describeCardType(r.card.type) : 'empty']);
      for (const line of formatTable(['READER', 'CARD'], rows)) out.out(`  ${line}`);
    };
    io.out('cardbridge demo — mock readers with virtual cards');
    printReaders(io);
    registry.on('event', (event) => io.out(`${new Date().toISOString().slice(11, 23)}  ${describeEvent(event)}`));
    io.out('');
    io.out('Status: the reader layer (hotplug, card recognition, PC/SC and mock readers) works;');
    io.out('the web APIs on localhost and the NHI/MOICA drivers are still being built (see README).');
    io.out('Press Ctrl+C to stop.');
    const done = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      if (!process.stdin.isTTY) return;
      for (const line of HELP) io.out(line);
      const rl = createInterface({ input: process.stdin, prompt: 'demo> ' });
      rl.prompt();
      rl.on('line', (line) => {
        const [verb, arg] = line.trim().split(/\s+/);
        const reader = DEMO_READERS[Number(arg) as 0 | 1];
        if (verb === 'quit' || verb === 'exit') return rl.close();
        if (verb === 'readers') printReaders(io);
        else if (verb === 'insert' && reader) void createDemoCard(reader).then((card) => registry.insertCard(reader, card));
        else if (verb === 'remove' && reader) registry.removeCard(reader);
        else if (verb) for (const l of HELP) io.out(l);
        rl.prompt();
      });
      rl.on('close', resolve);
    });
    // Nothing else holds the event loop open when stdin is not a terminal (e.g. under CI).
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await done;
    clearInterval(keepAlive);
    await registry.stop();
    io.out('demo stopped');
    return EXIT.ok;
  },
};
