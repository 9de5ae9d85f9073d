import { CardBridgeError, asCardBridgeError } from '../errors.js';

/** Where a command writes; tests pass their own to capture output. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  isTTY: boolean;
}

export const processIO: CliIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTTY: Boolean(process.stdout.isTTY),
};

export interface CliCommand {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], io: CliIO): Promise<number>;
}

/** Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 something to install or start. */
export const EXIT = { ok: 0, failed: 1, usage: 2, environment: 3 } as const;

export class UsageError extends Error {}

/** One line for the user, one for what to do; never a stack trace. */
export function reportError(e: unknown, io: CliIO): number {
  if (e instanceof UsageError) {
    io.err(`cardbridge: ${e.message}`);
    io.err('Run "cardbridge --help" for usage.');
    return EXIT.usage;
  }
  const error: CardBridgeError = asCardBridgeError(e, 'TransportError');
  io.err(`cardbridge: ${error.message} [${error.code}]`);
  if (error.hint) io.err(`  → ${error.hint}`);
  return error.code === 'Unavailable' || error.code === 'NoService' ? EXIT.environment : EXIT.failed;
}

