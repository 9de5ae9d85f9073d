#!/usr/bin/env node
import { VERSION } from '../version.js';
import { type CliCommand, EXIT, type CliIO, processIO, reportError } from './io.js';
import { formatTable } from './table.js';

/**
 * The commands are loaded only when one is asked for (or the help lists them), so
 * `cardbridge --version` starts without fastify, pkijs or the PC/SC addon.
 */
async function commands(): Promise<CliCommand[]> {
  return (await import('./commands/index.js')).COMMANDS;
}

function help(io: CliIO, COMMANDS: CliCommand[]): void {
  io.out(`cardbridge ${VERSION} — use Taiwan's citizen certificate (自然人憑證) and health insurance (健保卡) cards from web pages`);
  io.out('');
  io.out('Usage: cardbridge <command> [options]');
  io.out('');
  io.out('Commands:');
  for (const line of formatTable(['', ''], COMMANDS.map((c) => [`  ${c.name}`, c.summary])).slice(1)) io.out(line);
  io.out('');
  io.out('Options:');
  io.out('  --help, -h     show this help (or "cardbridge <command> --help")');
  io.out('  --version, -v  print the version');
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    help(io, await commands());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-v') {
    io.out(VERSION);
    return EXIT.ok;
  }
  const command = (await commands()).find((c) => c.name === first);
  if (!command) {
    io.err(`cardbridge: unknown command "${first}"`);
    io.err('Run "cardbridge --help" to see the commands.');
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${command.summary}.`);
    io.out(`Usage: ${command.usage}`);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    return reportError(e, io);
  }
}
