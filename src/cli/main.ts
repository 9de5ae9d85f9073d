#!/usr/bin/env node
import { VERSION } from '../version.js';
import { COMMANDS } from './commands/index.js';
import { EXIT, type CliCommand, type CliIO, processIO, reportError } from './io.js';
import { formatTable } from './table.js';

function help(io: CliIO): void {
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
    help(io);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version' || first === '-v') {
    io.out(VERSION);
    return EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === first);
  if (!entry) {
    io.err(`cardbridge: unknown command "${first}"`);
    io.err('Run "cardbridge --help" to see the commands.');
    return EXIT.usage;
  }
  // Only now is the command's module (and fastify, pkijs, the PC/SC addon behind it) loaded.
  let command: CliCommand;
  try {
    command = await entry.load();
  } catch (e) {
    return reportError(e, io);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${entry.summary}.`);
    io.out(`Usage: ${command.usage}`);
    for (const line of command.help ?? []) io.out(line);
    return EXIT.ok;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    return reportError(e, io);
  }
}
