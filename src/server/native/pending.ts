import { randomBytes, timingSafeEqual } from 'node:crypto';
import { CardBridgeError, asCardBridgeError } from '../../errors.js';
import { MOICA_UNBLOCK_HINT } from '../../cards/moica/moica-card.js';
import { type Problem, problemOf } from '../problem.js';

/**
 * Requests that need the user: consent to share personal data, or a PIN typed in
 * cardbridge's own window. The relying page only ever sees the request's id and state; the
 * window proves it is ours with a per-request secret that is never sent to the page's API.
 */
export type PendingKind = 'consent' | 'pin';

export interface PendingSpec<T> {
  origin: string;
  kind: PendingKind;
  /** What the user is asked, in words (shown in the window). */
  operation: string;
  /** The card the operation will use, as the user knows it (shown in the window). */
  card: string;
  /** Identifies the card in its reader, for one PIN prompt per card at a time. */
  cardKey: string;
  /** The reader holding that card: its removal ends the request (CardRemoved). */
  reader?: string;
  /**
   * Several cards could serve and the page named none: the window lists these and the user
   * chooses one before anything else (`reader` and `card` are then the chosen one's).
   */
  choices?: PendingCardChoice[];
  /**
   * `pin` requests: the card's PIN tries as cardbridge knows them on every path (the tries
   * tracker, read from the card's own answers), asked each time the window looks, for the
   * card in `reader`.
   */
  pinStatus?: (reader: string) => Promise<PinStatusView>;
  /** `consent` requests: how long "allow and remember" remembers (the window says so). */
  rememberDays?: number;
  /**
   * Does the work once the user agreed; gets the PIN (and the last-try confirmation) for `pin`
   * requests, and for `consent` requests whether the user chose to remember the answer.
   */
  run(input: { pin?: string; confirmLastTry?: boolean; remember?: boolean; chosen?: PendingCardChoice }): Promise<T>;
}

/** One card the user may choose, as the window shows it (never the full card number). */
export interface PendingCardChoice {
  reader: string;
  /** The holder's name from the card's certificate; null when the certificate has none. */
  holder: string | null;
  /** The card number masked, e.g. `TP**********4321`. */
  card: string;
  /** What `run` needs to insist on this very card (e.g. its full number); never shown. */
  key: string;
}

export type CardChoiceView = Omit<PendingCardChoice, 'key'>;

export interface PinStatusView {
  /** Absent: no failed VERIFY seen since the last success. */
  triesLeft?: number;
  blocked: boolean;
}

export type PendingState = 'pending' | 'running' | 'done' | 'failed';

export interface PendingView {
  id: string;
  state: PendingState;
  result?: unknown;
  problem?: Problem;
}

export interface UiView {
  id: string;
  kind: PendingKind;
  origin: string;
  operation: string;
  card: string;
  state: PendingState;
  /** Known from the card's last answers on any path; the window insists on confirmation at 1. */
  triesLeft?: number;
  /** `pin` requests: the card is known to be blocked; the window asks for no PIN and says how to unblock. */
  blocked?: boolean;
  unblockHint?: string;
  /** `consent` requests: days "allow and remember" lasts. */
  rememberDays?: number;
  /** The cards to choose from, while the user has not chosen (then `chosen` is the reader). */
  choices?: CardChoiceView[];
  chosen?: string;
  problem?: Problem;
}

export interface Submission {
  decision: 'allow' | 'deny';
  /** The reader of the card chosen from `choices`; only that, before the PIN. */
  choose?: string;
  pin?: string;
  confirmLastTry?: boolean;
  /** `consent`: remember the answer (for rememberDays); otherwise it is for this request only. */
  remember?: boolean;
}

interface Entry {
  id: string;
  secret: Buffer;
  spec: PendingSpec<unknown>;
  state: PendingState;
  result?: unknown;
  problem?: Problem;
  expiresAt: number;
  timer: NodeJS.Timeout;
  waiters: Set<() => void>;
  /** The page's long polls now open, and when it last asked: its heartbeat. */
  pagePolls: number;
  pageSeenAt: number;
  /** The card the user chose from `spec.choices`. */
  chosen?: PendingCardChoice;
}

export interface PendingOptions {
  /** How long the user has to answer (default 2 minutes). */
  ttlMs?: number;
  /** How long a finished request stays readable (default 1 minute). */
  keepMs?: number;
  /** Most open requests at once, across all sites (default 100). */
  maxOpen?: number;
  /**
   * A request still waiting for the user is cancelled when its page has had no poll open and
   * sent none for this long (default 3 s): the browser went away, and the card must not stay
   * Busy until the 2-minute limit.
   */
  abandonMs?: number;
  /** How often that is checked (default 500 ms). */
  abandonCheckMs?: number;
}

/** The reader the request works with: the page's (or the only) card's, or the one the user chose. */
function readerOf(entry: Entry): string | undefined {
  return entry.chosen?.reader ?? entry.spec.reader;
}

/** How the window names a chosen card: holder, masked number, reader. */
export function choiceLabel(choice: CardChoiceView): string {
  return [choice.holder, choice.card, choice.reader].filter((part) => part !== null && part !== '').join(' — ');
}

const notFound = () => new CardBridgeError('InvalidInput', 'No such request (it may have expired)');

export class PendingRequests {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly keepMs: number;
  private readonly maxOpen: number;
  private readonly abandonMs: number;
  private readonly abandonCheckMs: number;
  private abandonTimer: NodeJS.Timeout | undefined;

  constructor(options: PendingOptions = {}) {
    this.ttlMs = options.ttlMs ?? 120_000;
    this.keepMs = options.keepMs ?? 60_000;
    this.maxOpen = options.maxOpen ?? 100;
    this.abandonMs = options.abandonMs ?? 3_000;
    this.abandonCheckMs = options.abandonCheckMs ?? 500;
  }

  create<T>(spec: PendingSpec<T>): { id: string; secret: string; expiresAt: Date } {
    const open = [...this.entries.values()].filter((e) => e.state === 'pending' || e.state === 'running');
    if (open.length >= this.maxOpen) throw new CardBridgeError('Busy', 'Too many requests are waiting for the user');
    if (spec.kind === 'pin' && open.some((e) => e.spec.kind === 'pin' && e.spec.cardKey === spec.cardKey)) {
      throw new CardBridgeError('Busy', 'Another PIN request for this card is already waiting for the user', {
        hint: 'Finish or close the open cardbridge window first.',
      });
    }
    const id = randomBytes(16).toString('base64url');
    const secret = randomBytes(32);
    const expiresAt = Date.now() + this.ttlMs;
    const entry: Entry = {
      id,
      secret,
      spec: spec as PendingSpec<unknown>,
      state: 'pending',
      expiresAt,
      waiters: new Set(),
      pagePolls: 0,
      pageSeenAt: Date.now(),
      timer: setTimeout(() => this.fail(entry, new CardBridgeError('Timeout', 'Nobody answered in cardbridge’s window in time')), this.ttlMs),
    };
    entry.timer.unref();
    this.entries.set(id, entry);
    this.watchForAbandoned();
    return { id, secret: secret.toString('base64url'), expiresAt: new Date(expiresAt) };
  }

  /** The page's view: only the origin that asked may see it. */
  view(id: string, origin: string | undefined): PendingView {
    const entry = this.entries.get(id);
    if (!entry || entry.spec.origin !== origin) throw notFound();
    const view: PendingView = { id, state: entry.state === 'running' ? 'pending' : entry.state };
    if (entry.state === 'done') view.result = entry.result;
    if (entry.state === 'failed') view.problem = entry.problem!;
    return view;
  }

  /**
   * Resolves when the request settles, after `ms`, or when `connection` aborts (the page's
   * connection closed), whichever is first. An open wait is the page's heartbeat.
   */
  async wait(id: string, origin: string | undefined, ms: number, connection?: AbortSignal): Promise<PendingView> {
    const entry = this.entries.get(id);
    if (!entry || entry.spec.origin !== origin) throw notFound();
    entry.pageSeenAt = Date.now();
    if ((entry.state === 'pending' || entry.state === 'running') && ms > 0 && !connection?.aborted) {
      entry.pagePolls += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        connection?.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          connection?.removeEventListener('abort', done);
          entry!.waiters.delete(done);
          resolve();
        }
        entry.waiters.add(done);
      });
      entry.pagePolls -= 1;
      entry.pageSeenAt = Date.now();
    }
    return this.view(id, origin);
  }

  cancel(id: string, origin: string | undefined): PendingView {
    const entry = this.entries.get(id);
    if (!entry || entry.spec.origin !== origin) throw notFound();
    if (entry.state === 'pending') this.fail(entry, new CardBridgeError('Cancelled', 'The request was cancelled'));
    return this.view(id, origin);
  }

  /** The window's view, after it proved it holds the request's secret. */
  async uiView(id: string, secret: string): Promise<UiView> {
    const entry = this.authorised(id, secret);
    const card = entry.chosen ? choiceLabel(entry.chosen) : entry.spec.card;
    const view: UiView = { id, kind: entry.spec.kind, origin: entry.spec.origin, operation: entry.spec.operation, card, state: entry.state };
    if (entry.spec.choices) {
      view.choices = entry.spec.choices.map(({ reader, holder, card: masked }) => ({ reader, holder, card: masked }));
      if (entry.chosen) view.chosen = entry.chosen.reader;
    }
    if (entry.state === 'pending') {
      const status = await this.pinStatusOf(entry);
      if (status?.triesLeft !== undefined) view.triesLeft = status.triesLeft;
      if (status) view.blocked = status.blocked;
      if (status?.blocked) view.unblockHint = MOICA_UNBLOCK_HINT;
    }
    if (entry.spec.rememberDays !== undefined) view.rememberDays = entry.spec.rememberDays;
    if (entry.problem) view.problem = entry.problem;
    return view;
  }

  /** Unknown (undefined) when the card cannot be asked now: the card's own answer decides then. */
  private async pinStatusOf(entry: Entry): Promise<PinStatusView | undefined> {
    const reader = readerOf(entry);
    if (entry.spec.kind !== 'pin' || !entry.spec.pinStatus || reader === undefined) return undefined;
    try {
      return await entry.spec.pinStatus(reader);
    } catch {
      return undefined;
    }
  }

  /**
   * The user's answer from the window. A wrong PIN leaves the request open so the user can
   * type again (never resent by us); the last try needs an explicit confirmation.
   */
  async submit(id: string, secret: string, submission: Submission): Promise<UiView> {
    const entry = this.authorised(id, secret);
    if (entry.state !== 'pending') return this.uiView(id, secret);
    if (submission.decision === 'deny') {
      this.fail(entry, new CardBridgeError('Cancelled', 'The user declined in cardbridge’s window'));
      return this.uiView(id, secret);
    }
    const choices = entry.spec.choices;
    if (submission.choose !== undefined) {
      const choice = choices?.find((c) => c.reader === submission.choose);
      if (!choice || entry.chosen) throw new CardBridgeError('InvalidInput', entry.chosen ? 'A card was already chosen' : 'That card is not one of the cards offered');
      entry.chosen = choice;
      return this.uiView(id, secret);
    }
    if (choices && !entry.chosen) throw new CardBridgeError('InvalidInput', 'Choose the card first (請先選擇卡片)');
    if (entry.spec.kind === 'pin') {
      const status = await this.pinStatusOf(entry);
      if (status?.blocked) {
        // Never sent: the card is blocked, and only its 用戶代碼 at the CA's site unblocks it.
        this.fail(entry, new CardBridgeError('PinBlocked', 'The card PIN is blocked; cardbridge did not send the PIN', { triesLeft: 0, hint: MOICA_UNBLOCK_HINT }));
        return this.uiView(id, secret);
      }
      if (submission.pin === undefined) throw new CardBridgeError('PinLength', 'Type the PIN');
      if (status?.triesLeft === 1 && submission.confirmLastTry !== true) {
        throw new CardBridgeError('LastTryNeedsConfirmation', 'The card has one PIN try left: confirm the last try explicitly', { triesLeft: 1 });
      }
    }
    entry.state = 'running';
    entry.problem = undefined;
    try {
      const chosen = entry.chosen ? { chosen: entry.chosen } : {};
      const result = await entry.spec.run(
        entry.spec.kind === 'pin' ? { pin: submission.pin!, confirmLastTry: submission.confirmLastTry === true, ...chosen } : { remember: submission.remember === true, ...chosen },
      );
      this.settle(entry, 'done', result);
    } catch (e) {
      const error = asCardBridgeError(e);
      // The service refuses the last try too (tries may have been spent elsewhere meanwhile):
      // the window then asks for the confirmation, as for a wrong PIN.
      if (error.code === 'PinIncorrect' || error.code === 'PinLength' || error.code === 'LastTryNeedsConfirmation') {
        entry.state = 'pending';
        entry.problem = problemOf(error);
      } else {
        this.fail(entry, error);
      }
    }
    return this.uiView(id, secret);
  }

  private authorised(id: string, secret: string): Entry {
    const entry = this.entries.get(id);
    const given = Buffer.from(secret, 'base64url');
    if (!entry || given.length !== entry.secret.length || !timingSafeEqual(given, entry.secret)) throw notFound();
    return entry;
  }

  /** Ends every request still waiting for the user on the card in `reader` (it was taken out). */
  failForReader(reader: string, error: CardBridgeError): void {
    for (const entry of this.entries.values()) {
      if (entry.state !== 'pending') continue;
      if (readerOf(entry) === reader) {
        this.fail(entry, error);
      } else if (!entry.chosen && entry.spec.choices?.some((c) => c.reader === reader)) {
        // A card not chosen yet left: it is no longer offered; with none left, nothing can serve.
        entry.spec.choices = entry.spec.choices.filter((c) => c.reader !== reader);
        if (entry.spec.choices.length === 0) this.fail(entry, error);
      }
    }
  }

  /** Runs while requests wait for the user; cancels those whose page went away. */
  private watchForAbandoned(): void {
    if (this.abandonTimer) return;
    this.abandonTimer = setInterval(() => {
      const now = Date.now();
      let waiting = 0;
      for (const entry of this.entries.values()) {
        if (entry.state !== 'pending') continue;
        if (entry.pagePolls === 0 && now - entry.pageSeenAt > this.abandonMs) {
          this.fail(entry, new CardBridgeError('Cancelled', 'The page that asked went away (its browser tab or window was closed)'));
        } else {
          waiting += 1;
        }
      }
      if (waiting === 0 && ![...this.entries.values()].some((e) => e.state === 'running')) this.stopWatching();
    }, this.abandonCheckMs);
    this.abandonTimer.unref();
  }

  private stopWatching(): void {
    if (this.abandonTimer) clearInterval(this.abandonTimer);
    this.abandonTimer = undefined;
  }

  private fail(entry: Entry, error: CardBridgeError): void {
    if (entry.state === 'done' || entry.state === 'failed') return;
    entry.problem = problemOf(error);
    this.settle(entry, 'failed');
  }

  private settle(entry: Entry, state: 'done' | 'failed', result?: unknown): void {
    clearTimeout(entry.timer);
    entry.state = state;
    if (state === 'done') entry.result = result;
    for (const wake of [...entry.waiters]) wake();
    const cleanup = setTimeout(() => this.entries.delete(entry.id), this.keepMs);
    cleanup.unref();
  }

  /** Ends everything on shutdown so no long-poll hangs. */
  close(): void {
    this.stopWatching();
    for (const entry of this.entries.values()) this.fail(entry, new CardBridgeError('Cancelled', 'cardbridge is shutting down'));
  }
}
