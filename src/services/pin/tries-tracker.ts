import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CardBridgeError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { SerialQueue } from '../../util/serial-queue.js';

/**
 * What cardbridge knows about a card's PIN retry counter, from the card's own answers to
 * VERIFY (`63 Cx` → x tries left, `69 83` / `63 C0` → blocked). Nothing here reads the
 * counter from the card: an ISO VERIFY without data is not documented as free on MOICA cards
 * (spec corrections), so the only safe source is a VERIFY the user asked for anyway.
 *
 * One record per card (not per reader), keyed by a SHA-256 of the card serial (fixed prefix) so the
 * file holds no personal data. It lives in the state directory so a daemon restart, the CLI and
 * the daemon all see the same count; it is re-read on every question for that reason.
 */

export const TRIES_FILE = 'pin-tries.json';

export type TriesStatus =
  /** No failed VERIFY seen since the last success: the card may have its full count. */
  | { known: false; blocked: false }
  | { known: true; triesLeft: number; blocked: boolean };

interface TriesFile {
  version: 1;
  /** card key → tries left as the card last reported them (0 = blocked) and when */
  cards: Record<string, { triesLeft: number; at: string }>;
}

const UNKNOWN: TriesStatus = { known: false, blocked: false };

/** The card's key in the file: no serial, no personal data, stable across runs. */
export function cardKeyOf(serialNumber: string): string {
  return createHash('sha256').update('cardbridge pin-tries v1\0').update(serialNumber).digest('hex').slice(0, 32);
}

export class TriesTracker {
  readonly #path: string | undefined;
  /** In-memory copy when there is no file (tests, tools without a state directory). */
  #memory: TriesFile = { version: 1, cards: {} };
  readonly #writes = new SerialQueue();
  readonly #now: () => Date;

  private constructor(path: string | undefined, now: () => Date) {
    this.#path = path;
    this.#now = now;
  }

  static inStateDir(stateDir: string, now: () => Date = () => new Date()): TriesTracker {
    return new TriesTracker(join(stateDir, TRIES_FILE), now);
  }

  /** Forgets everything when the process ends: for callers that have no state directory. */
  static inMemory(): TriesTracker {
    return new TriesTracker(undefined, () => new Date());
  }

  async status(serialNumber: string): Promise<TriesStatus> {
    const entry = (await this.#read()).cards[cardKeyOf(serialNumber)];
    if (!entry) return UNKNOWN;
    return { known: true, triesLeft: entry.triesLeft, blocked: entry.triesLeft === 0 };
  }

  /** A VERIFY that failed: only PIN answers that carry a count change anything. */
  recordFailure(serialNumber: string, error: CardBridgeError): Promise<void> {
    let triesLeft: number | undefined;
    if (error.code === 'PinBlocked') triesLeft = 0;
    else if (error.code === 'PinIncorrect' && error.triesLeft !== undefined) triesLeft = error.triesLeft;
    if (triesLeft === undefined) return Promise.resolve();
    const left = triesLeft;
    return this.#update((file) => {
      file.cards[cardKeyOf(serialNumber)] = { triesLeft: left, at: this.#now().toISOString() };
    });
  }

  /** A VERIFY that succeeded resets the card's counter: back to unknown (= the card's maximum). */
  recordSuccess(serialNumber: string): Promise<void> {
    const key = cardKeyOf(serialNumber);
    return this.#update((file) => {
      delete file.cards[key];
    });
  }

  async #read(): Promise<TriesFile> {
    if (this.#path === undefined) return this.#memory;
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch {
      return { version: 1, cards: {} }; // no file yet
    }
    try {
      const parsed = JSON.parse(text) as Partial<TriesFile>;
      const cards: TriesFile['cards'] = {};
      for (const [key, value] of Object.entries(parsed.cards ?? {})) {
        if (value && Number.isInteger(value.triesLeft) && value.triesLeft >= 0 && value.triesLeft <= 15) cards[key] = { triesLeft: value.triesLeft, at: String(value.at) };
      }
      return { version: 1, cards };
    } catch {
      // A damaged file must not stop every PIN operation; the next VERIFY answer rewrites it.
      return { version: 1, cards: {} };
    }
  }

  #update(change: (file: TriesFile) => void): Promise<void> {
    return this.#writes.run(async () => {
      const file = await this.#read();
      change(file);
      if (this.#path === undefined) {
        this.#memory = file;
        return;
      }
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.#path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    });
  }
}
