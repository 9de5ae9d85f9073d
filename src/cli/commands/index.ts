import type { CliCommand } from '../io.js';
import { demoCommand } from './demo.js';
import { readCommand } from './read.js';
import { readersCommand } from './readers.js';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: CliCommand[] = [readersCommand, readCommand, demoCommand];
