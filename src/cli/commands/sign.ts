import { open, stat, writeFile } from 'node:fs/promises';
import { messageText } from '../../client/messages.js';
import { dirname, resolve } from 'node:path';
import { CardBridgeError, isCardBridgeError } from '../../errors.js';
import type { Pkcs1HashName } from '../../crypto/pkcs1.js';
import { assertMoicaPin } from '../../cards/moica/moica-card.js';
import { certificateFacts } from '../../crypto/certificate-facts.js';
import { MoicaService, type MoicaSignResult } from '../../services/moica/moica-service.js';
import type { ReaderRegistry } from '../../readers/types.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';
import { openRegistry as openDefaultRegistry } from '../reader-source.js';
import { canPromptHidden, promptHidden, readFirstLine } from '../pin-input.js';
import { TriesTracker } from '../../services/pin/tries-tracker.js';
import { defaultStateDir } from '../../config/paths.js';
import { MOICA_UNBLOCK_HINT } from '../../cards/moica/moica-card.js';

/**
 * `cardbridge sign`: signs a file with the signing key of a citizen certificate card
 * (自然人憑證). The PIN comes from the first line of stdin (`--pin-stdin`) or is typed at the
 * terminal without echo; a wrong PIN is reported with the tries left and never retried.
 */

/** Largest input file: the whole file is hashed (and, for attached CMS, embedded) in memory. */
export const MAX_SIGN_INPUT_BYTES = 64 * 1024 * 1024;

const HASHES: readonly Pkcs1HashName[] = ['sha1', 'sha256', 'sha384', 'sha512'];
const FORMATS = ['pkcs1', 'cms'] as const;
type CliSignFormat = (typeof FORMATS)[number];

const SIGN_OPTIONS = {
  in: { type: 'string' },
  hash: { type: 'string' },
  format: { type: 'string' },
  detached: { type: 'boolean' },
  'pin-stdin': { type: 'boolean' },
  out: { type: 'string' },
  reader: { type: 'string' },
  mock: { type: 'boolean' },
} as const;

const USAGE =
  'cardbridge sign --in FILE [--hash sha1|sha256|sha384|sha512] [--format pkcs1|cms] [--detached] [--pin-stdin] [--out FILE] [--reader NAME] [--mock]';

function fileProblem(e: unknown): string {
  switch ((e as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT':
      return 'it does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

function tooLarge(path: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `The input file "${path}" is larger than ${MAX_SIGN_INPUT_BYTES / (1024 * 1024)} MiB`, {
    hint: 'Sign a hash or a smaller document; cardbridge keeps the whole input in memory.',
  });
}

/** Reads the whole input, refusing more than MAX_SIGN_INPUT_BYTES (also from pipes and FIFOs). */
export async function readSignInput(path: string): Promise<Buffer> {
  const unreadable = (e: unknown) =>
    new CardBridgeError('InvalidInput', `Cannot read the input file "${path}": ${fileProblem(e)}`, { hint: 'Check the path given to --in.', cause: e });
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw unreadable(e);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw unreadable(Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
    if (info.isFile() && info.size > MAX_SIGN_INPUT_BYTES) throw tooLarge(path);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1024 * 1024, MAX_SIGN_INPUT_BYTES + 1 - total));
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(chunk, 0, chunk.length, null));
      } catch (e) {
        throw unreadable(e);
      }
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_SIGN_INPUT_BYTES) throw tooLarge(path);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

/** Fails before the PIN is asked for when --out cannot possibly be written. */
async function checkOutputPath(path: string): Promise<void> {
  const problem = (why: string) => new CardBridgeError('InvalidInput', `Cannot write the signature to "${path}": ${why}`, { hint: 'Check the path given to --out.' });
  const target = await stat(path).catch(() => undefined);
  if (target?.isDirectory()) throw problem('it is a directory');
  const parent = await stat(dirname(resolve(path))).catch(() => undefined);
  if (!parent) throw problem(`the directory "${dirname(path)}" does not exist`);
  if (!parent.isDirectory()) throw problem(`"${dirname(path)}" is not a directory`);
}

/** One line for a wrong PIN, with the tries left; the last try gets a warning. Never retried. */
function reportWrongPin(e: CardBridgeError, io: CliIO): number {
  const left = e.triesLeft;
  io.err(`cardbridge: Wrong PIN${left === undefined ? '' : `: ${left} ${left === 1 ? 'try' : 'tries'} left`} [PinIncorrect]`);
  io.err(`  ${messageText('PinIncorrect')}`);
  if (left === 1) io.err('  → Warning: one try left. Another wrong PIN blocks the card; check the PIN before trying again.');
  else io.err('  → cardbridge never retries a PIN by itself; run the command again with the right PIN.');
  return EXIT.failed;
}

function describeSigner(result: MoicaSignResult): string {
  try {
    return certificateFacts(result.certificate).holderName ?? 'unknown holder';
  } catch {
    return 'unknown holder';
  }
}

export interface SignCommandOptions {
  /** Where the readers come from (tests inject a registry holding their own virtual card). */
  openRegistry?: (mock: boolean) => Promise<ReaderRegistry>;
  /**
   * The cards' PIN tries. Default: the state directory's, shared with the daemon, so tries
   * spent anywhere count here; in memory for --mock and for an injected registry (their cards
   * are not the user's).
   */
  tries?: () => TriesTracker;
}

/**
 * At a terminal, the last try is spent only after the user types "yes"; a blocked card is
 * never asked for its PIN. Returns whether the last try was confirmed.
 */
async function confirmAtTerminal(service: MoicaService, reader: string, io: CliIO, stdin: Parameters<typeof promptHidden>[0]): Promise<boolean> {
  const status = await service.pinStatus({ reader });
  if (status.blocked) {
    throw new CardBridgeError('PinBlocked', 'The card PIN is blocked; cardbridge did not ask for it', { triesLeft: 0, hint: MOICA_UNBLOCK_HINT });
  }
  if (status.triesLeft !== 1) return false;
  io.err(`Warning: the citizen certificate card ${status.serialNumber} has ONE PIN try left. A wrong PIN now blocks it (unblocking needs your 用戶代碼 at the MOICA CA web site).`);
  io.err('這張卡只剩最後一次 PIN 碼機會，輸錯將鎖卡。');
  const answer = await promptHidden(stdin, io, 'Type "yes" and Enter to use the last try (not shown; anything else cancels):');
  if (answer.trim().toLowerCase() !== 'yes') throw new CardBridgeError('Cancelled', 'The last PIN try was not confirmed; nothing was sent to the card');
  return true;
}

export function createSignCommand(options: SignCommandOptions = {}): CliCommand {
  const openRegistry = options.openRegistry ?? openDefaultRegistry;
  const trackerFor = (mock: boolean): TriesTracker =>
    options.tries?.() ?? (mock || options.openRegistry ? TriesTracker.inMemory() : TriesTracker.inStateDir(defaultStateDir()));
  return {
    name: 'sign',
    usage: USAGE,
    help: [
      '',
      'Options:',
      '  --in FILE       the data to sign',
      '  --hash NAME     sha1, sha256, sha384 or sha512 (default sha256)',
      '  --format NAME   cms (CMS SignedData, DER) or pkcs1 (the bare RSA signature); default cms',
      '  --detached      cms without the data inside (default: attached)',
      '  --pin-stdin     read the PIN from the first line of stdin (default: typed, not echoed)',
      '  --out FILE      write the signature there (default: base64 on stdout)',
      '  --reader NAME   the reader to use (default: the one holding a MOICA card)',
      '  --mock          the virtual readers and cards instead of pcscd',
      '',
      'Example: cardbridge sign --in file.pdf --out file.p7s',
    ],
    async run(args, io) {
      const { values } = parseCommandArgs(args, SIGN_OPTIONS);
      const input = values.in;
      if (input === undefined || input === '') throw new UsageError('sign: say which file to sign with --in FILE');
      const hash = (values.hash ?? 'sha256') as Pkcs1HashName;
      if (!HASHES.includes(hash)) throw new UsageError(`sign: unknown hash "${values.hash}" (choose from: ${HASHES.join(', ')})`);
      const format = (values.format ?? 'cms') as CliSignFormat;
      if (!FORMATS.includes(format)) throw new UsageError(`sign: unknown format "${values.format}" (choose from: ${FORMATS.join(', ')})`);
      const detached = values.detached ?? false;
      if (detached && format !== 'cms') throw new UsageError('sign: --detached applies to --format cms only');
      if (values.out === '') throw new UsageError('sign: --out needs a file name');

      const stdin = io.stdin;
      const prompt = canPromptHidden(stdin);
      if (!values['pin-stdin'] && !prompt) {
        throw new UsageError('sign: standard input is not a terminal, so the PIN cannot be typed; pipe it in and add --pin-stdin');
      }
      if (!stdin) throw new UsageError('sign: --pin-stdin needs a standard input to read the PIN from');

      const data = await readSignInput(input);
      if (values.out !== undefined) await checkOutputPath(values.out);

      // Piped PIN: read and checked before any reader is opened. A terminal is asked once the
      // card is found, so nobody types a PIN for a card that is not there.
      let pin: string | undefined;
      if (!prompt) {
        pin = await readFirstLine(stdin);
        assertMoicaPin(pin);
      }

      const registry = await openRegistry(values.mock ?? false);
      try {
        const service = new MoicaService(registry, { tries: trackerFor(values.mock ?? false) });
        let reader = values.reader;
        let confirmLastTry = false;
        if (pin === undefined) {
          const card = await service.cardInfo(reader === undefined ? {} : { reader });
          reader = card.reader;
          confirmLastTry = await confirmAtTerminal(service, card.reader, io, stdin);
          pin = await promptHidden(stdin, io, `PIN of the citizen certificate card ${card.serialNumber} in "${card.reader}" (not shown; Ctrl+C cancels):`);
          assertMoicaPin(pin);
        }
        let result: MoicaSignResult;
        try {
          result = await service.sign({ data, hash, format, ...(format === 'cms' ? { detached } : {}), ...(reader === undefined ? {} : { reader }) }, pin, { confirmLastTry });
        } catch (e) {
          if (isCardBridgeError(e, 'PinIncorrect')) return reportWrongPin(e, io);
          if (isCardBridgeError(e, 'LastTryNeedsConfirmation')) {
            throw new CardBridgeError('LastTryNeedsConfirmation', e.message, {
              triesLeft: 1,
              hint: 'A piped PIN cannot confirm the last try: run the command at a terminal without --pin-stdin and confirm it there.',
            });
          }
          throw e;
        } finally {
          pin = undefined;
        }

        const kind = format === 'cms' ? `cms (${detached ? 'detached' : 'attached'}, DER)` : 'pkcs1 (RSASSA-PKCS1-v1_5)';
        let destination: string;
        if (values.out !== undefined) {
          try {
            await writeFile(values.out, result.signature);
          } catch (e) {
            throw new CardBridgeError('InvalidInput', `Cannot write the signature to "${values.out}": ${fileProblem(e)}`, { cause: e });
          }
          destination = `written to ${values.out}`;
        } else {
          io.out(result.signature.toString('base64'));
          destination = 'base64 on stdout';
        }
        io.err(
          `Signed ${input} (${data.length} bytes): ${kind}, ${hash}, ${result.signature.length}-byte signature ${destination}; ` +
            `signer ${describeSigner(result)} (card ${result.serialNumber} in "${result.reader}")`,
        );
        return EXIT.ok;
      } finally {
        await registry.stop();
      }
    },
  };
}

export const signCommand: CliCommand = createSignCommand();
