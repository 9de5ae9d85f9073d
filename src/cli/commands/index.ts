import type { CliCommand } from '../io.js';
import { browsersCommand } from './browsers.js';
import { certsCommand } from './certs.js';
import { crlCommand } from './crl.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { mockCommand } from './mock.js';
import { readCommand } from './read.js';
import { readersCommand } from './readers.js';
import { serveCommand } from './serve.js';
import { signCommand } from './sign.js';
import { sitesCommand } from './sites.js';
import { traceCommand } from './trace.js';
import { waitCommand } from './wait.js';

/** Every subcommand, in the order `--help` lists them. */
export const COMMANDS: CliCommand[] = [serveCommand, waitCommand, readersCommand, readCommand, signCommand, sitesCommand, browsersCommand, certsCommand, crlCommand, doctorCommand, traceCommand, demoCommand, mockCommand];
