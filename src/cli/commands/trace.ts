import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CardBridgeError } from '../../errors.js';
import { assertMoicaPin } from '../../cards/moica/moica-card.js';
import type { ReaderRegistry } from '../../readers/types.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { type TraceOperation, TRACE_OPERATIONS, isTraceOperation, needsPin, recordOperation } from '../../trace/operations.js';
import { serializeTrace } from '../../trace/trace-file.js';
import type { SamClientOptions } from '../../remote/nhi-sam/sam-client.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';
import { canPromptHidden, promptHidden, readFirstLine } from '../pin-input.js';
import { PcscReaderRegistry } from '../../readers/pcsc-registry.js';

/**
 * `cardbridge trace <operation> --out FILE`: runs one operation and writes its APDU exchange,
 * redacted (src/trace/redact.ts), to a file a citizen can send back. `--virtual CARD` records
 * from the project's virtual cards instead of a reader: that is how the fixture traces in
 * test/fixtures/traces are made (scripts/record-traces.sh).
 */

const USAGE = `cardbridge trace <${TRACE_OPERATIONS.join('|')}> --out FILE [--reader NAME] [--pin-stdin] [--virtual nhi|moica-gen1|moica-gen2]`;

const OPTIONS = {
  out: { type: 'string' },
  reader: { type: 'string' },
  'pin-stdin': { type: 'boolean' },
  virtual: { type: 'string' },
} as const;

/** Where the cards come from: real readers, or a virtual card (and emulated SAM for NHI). */
export interface TraceSource {
  registry: ReaderRegistry;
  sam?: SamClientOptions;
  close(): Promise<void>;
}

export interface TraceCommandOptions {
  openReal?: () => Promise<TraceSource>;
}

async function openReal(): Promise<TraceSource> {
  const registry = new PcscReaderRegistry();
  await registry.start();
  return { registry, close: () => registry.stop() };
}

async function openVirtual(card: string, operation: TraceOperation): Promise<TraceSource> {
  // Loaded only for --virtual: the emulators never load in a real recording.
  const { VIRTUAL_TRACE_CARDS, startVirtualTraceRig } = await import('../../trace/virtual-cards.js');
  const kind = VIRTUAL_TRACE_CARDS.find((k) => k === card);
  if (!kind) throw new UsageError(`trace: unknown virtual card "${card}" (choose from: ${VIRTUAL_TRACE_CARDS.join(', ')})`);
  if (kind.split('-')[0] !== operation.split('-')[0]) throw new UsageError(`trace: ${operation} needs a ${operation.split('-')[0]} card, not --virtual ${kind}`);
  const rig = await startVirtualTraceRig(kind);
  return { registry: rig.registry, ...(rig.sam ? { sam: { host: rig.sam.host, port: rig.sam.port } } : {}), close: () => rig.close() };
}

async function checkOutputPath(path: string): Promise<void> {
  const problem = (why: string) => new CardBridgeError('InvalidInput', `Cannot write the trace to "${path}": ${why}`, { hint: 'Check the path given to --out.' });
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw problem('it is a directory');
  const parent = await stat(dirname(resolve(path))).catch(() => undefined);
  if (!parent?.isDirectory()) throw problem(`the directory "${dirname(path)}" does not exist`);
}

function pinSource(io: CliIO, piped: boolean): () => Promise<string> {
  return async () => {
    const stdin = io.stdin;
    if (!stdin) throw new UsageError('trace: --pin-stdin needs a standard input to read the PIN from');
    const pin = piped ? await readFirstLine(stdin) : await promptHidden(stdin, io, 'PIN of the citizen certificate card (not shown; it is removed from the trace; Ctrl+C cancels):');
    assertMoicaPin(pin);
    return pin;
  };
}

export function createTraceCommand(options: TraceCommandOptions = {}): CliCommand {
  return {
    name: 'trace',
    usage: USAGE,
    help: [
      '',
      `Operations: ${TRACE_OPERATIONS.join(', ')}.`,
      '',
      'Options:',
      '  --out FILE                         where to write the trace (JSON, mode 0600); PINs and NHI holder data are removed',
      '  --reader NAME                      the reader to use (default: the first with the right card)',
      '  --pin-stdin                        read the PIN from the first line of standard input instead of asking',
      '  --virtual nhi|moica-gen1|moica-gen2  record from the project\'s virtual card instead of a reader',
      '',
      'Run "cardbridge doctor --card" first; docs/field-testing.md says what a trace contains.',
      '',
      'Example: cardbridge trace nhi-read --out nhi-read.json',
    ],
    async run(args, io) {
      const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
      const operation = positionals.join('-');
      if (operation === '') throw new UsageError(`trace: say which operation to record (${TRACE_OPERATIONS.join(', ')})`);
      if (!isTraceOperation(operation)) throw new UsageError(`trace: unknown operation "${positionals.join(' ')}" (choose from: ${TRACE_OPERATIONS.join(', ')})`);
      const out = values.out;
      if (out === undefined || out === '') throw new UsageError('trace: say where to write the trace with --out FILE');
      if (needsPin(operation) && !values['pin-stdin'] && !canPromptHidden(io.stdin)) {
        throw new UsageError('trace: standard input is not a terminal, so the PIN cannot be typed; pipe it in and add --pin-stdin');
      }
      await checkOutputPath(out);

      const source = values.virtual !== undefined ? await openVirtual(values.virtual, operation) : await (options.openReal ?? openReal)();
      let recorded;
      try {
        recorded = await recordOperation(
          operation,
          {
            registry: source.registry,
            ...(values.reader !== undefined ? { reader: values.reader } : {}),
            ...(source.sam ? { nhi: { sam: source.sam } } : {}),
            ...(needsPin(operation) ? { pin: pinSource(io, values['pin-stdin'] ?? false) } : {}),
          },
          values.virtual !== undefined ? 'virtual' : 'pcsc',
        );
      } finally {
        await source.close();
      }
      const commands = recorded.trace.sessions.reduce((n, s) => n + s.exchanges.length, 0);
      if (commands > 0 || !recorded.error) {
        try {
          // 0600: the file is the citizen's to read and send, nobody else's on this machine.
          await writeFileAtomic(out, serializeTrace(recorded.trace), 0o600);
        } catch (e) {
          throw new CardBridgeError('InvalidInput', `Cannot write the trace to "${out}": ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        io.err(`Trace of ${operation} written to ${out}: ${recorded.trace.sessions.length} card session(s), ${commands} commands; PINs and NHI holder data removed.`);
      }
      if (recorded.error) throw recorded.error;
      io.out(recorded.summary ?? '');
      return EXIT.ok;
    },
  };
}

export const traceCommand = createTraceCommand();
