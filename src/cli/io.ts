import { CardBridgeError, asCardBridgeError } from '../errors.js';
import { messageText } from '../client/messages.js';

/**
 * Standard input as commands see it: a readable stream that may be a terminal. Commands that
 * read a PIN use `setRawMode` (present on TTYs only) to read it without echo.
 */
export interface CliInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** Where a command writes; tests pass their own to capture output. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  isTTY: boolean;
  /** Standard input; absent means "nothing to read" (not a terminal, empty). */
  stdin?: CliInput;
}

export const processIO: CliIO = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTTY: Boolean(process.stdout.isTTY),
  // A getter: process.stdin is created on first access, only by commands that read it.
  get stdin(): CliInput {
    return process.stdin;
  },
};

/** A command's module: what its `--help` prints and what it does (its summary is in commands/index.ts). */
export interface CliCommand {
  name: string;
  usage: string;
  /** More lines for `--help`: each option with its default, an example. */
  help?: string[];
  run(args: string[], io: CliIO): Promise<number>;
}

/** Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 something to install or start. */
export const EXIT = { ok: 0, failed: 1, usage: 2, environment: 3 } as const;

export class UsageError extends Error {}

/**
 * The error's own line (what exactly happened), the catalogue's words for its code in
 * Traditional Chinese and English, and what to do; never a stack trace.
 */
export function reportError(e: unknown, io: CliIO): number {
  if (e instanceof UsageError) {
    io.err(`cardbridge: ${e.message}`);
    io.err('Run "cardbridge --help" for usage.');
    return EXIT.usage;
  }
  const error: CardBridgeError = asCardBridgeError(e, 'TransportError');
  io.err(`cardbridge: ${error.message} [${error.code}]`);
  const text = messageText(error.code);
  if (text) io.err(`  ${text}`);
  if (error.hint) io.err(`  → ${error.hint}`);
  return error.code === 'Unavailable' || error.code === 'NoService' ? EXIT.environment : EXIT.failed;
}

