import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: boolean; strict: true }>>;

/** node:util parseArgs, with its errors turned into usage errors a person can read. */
export function parseCommandArgs<T extends Options>(args: string[], options: T, allowPositionals = false): Parsed<T> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    // Duck-typed: errors from node:util may come from another realm (e.g. under a test VM).
    const message = (e as { message?: unknown })?.message;
    throw new UsageError(typeof message === 'string' ? message.replace(/\. To specify a positional.*$/s, '') : String(e));
  }
}
