import type { CliCommand } from '../io.js';
import { browsersCommand } from './browsers.js';
import { certsCommand } from './certs.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { readCommand } from './read.js';
import { readersCommand } from './readers.js';
import { serveCommand } from './serve.js';
import { signCommand } from './sign.js';
import { sitesCommand } from './sites.js';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: CliCommand[] = [serveCommand, readersCommand, readCommand, signCommand, sitesCommand, browsersCommand, certsCommand, doctorCommand, demoCommand];
