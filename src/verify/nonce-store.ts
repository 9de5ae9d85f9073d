import { randomBytes } from 'node:crypto';
import { VerifyError } from './errors.js';

/**
 * Where an {@link AuthTokenValidator} or a {@link LegacyLoginVerifier} remembers the nonces it
 * issued. The default keeps them in this process. A site with several back-end instances gives
 * every verifier the same shared store, so a nonce issued by one can be checked by another.
 *
 * The contract a shared store must keep (checkNonceStoreContract in nonce-store-contract.ts
 * tests it against two instances of your store sharing one back end):
 * 1. `add` remembers a nonce and its `issuedAt` so EVERY instance sees it once `add` resolves.
 * 2. `consume` is atomic across instances: of any number of concurrent calls for one nonce, on
 *    any instances, exactly one gets `fresh`; the others get `reused`.
 * 3. A consumed nonce stays `reused` (never `fresh` again, never `unknown` before the retention
 *    has passed); a nonce never added is `unknown`.
 * 4. Both keep `issuedAt` as given (the verifier judges the age, so instances' clocks matter:
 *    keep them in sync with NTP).
 * 5. Forgetting after the retention (≥ the verifiers' maxAgeMs) is allowed: a forgotten nonce is
 *    `unknown`, which refuses the login.
 * E.g. with Redis: `add` = `SET nonce:<n> <issuedAt> PX <retention> NX`; `consume` = one Lua
 * script that reads the value and, if not yet marked, marks it used, returning both.
 */

export type NonceLookup =
  /** Never issued here, or forgotten after its retention. */
  | { status: 'unknown' }
  /** Issued at `issuedAt` and presented before. */
  | { status: 'reused'; issuedAt: number }
  /** Issued at `issuedAt` and never presented before; now marked used. */
  | { status: 'fresh'; issuedAt: number };

export interface NonceStore {
  /** Remembers a nonce issued at `issuedAt` (ms since the epoch). */
  add(nonce: string, issuedAt: number): void | Promise<void>;
  /**
   * Looks a nonce up and marks it used in ONE atomic step: two concurrent calls for the same
   * nonce must not both see `fresh`.
   */
  consume(nonce: string, now: number): NonceLookup | Promise<NonceLookup>;
}

export interface InMemoryNonceStoreOptions {
  /** How long a nonce (used or not) is remembered; default 10 minutes. Keep it ≥ maxAgeMs. */
  retentionMs?: number;
  /** Oldest nonces are forgotten beyond this many; default 100 000. */
  maxEntries?: number;
}

interface Entry {
  issuedAt: number;
  used: boolean;
}

/** A process-local store. Single-threaded JavaScript makes `consume` atomic. */
export class InMemoryNonceStore implements NonceStore {
  readonly #entries = new Map<string, Entry>();
  readonly #retentionMs: number;
  readonly #maxEntries: number;

  constructor(options: InMemoryNonceStoreOptions = {}) {
    this.#retentionMs = options.retentionMs ?? 10 * 60_000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    if (!(this.#retentionMs > 0) || !(this.#maxEntries > 0)) throw new RangeError('retentionMs and maxEntries must be positive');
  }

  get size(): number {
    return this.#entries.size;
  }

  add(nonce: string, issuedAt: number): void {
    this.#purge(issuedAt);
    if (this.#entries.has(nonce)) throw new Error('Nonce collision: a nonce must be issued once');
    this.#entries.set(nonce, { issuedAt, used: false });
    // Insertion order is issue order, so the first keys are the oldest.
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  consume(nonce: string, now: number): NonceLookup {
    this.#purge(now);
    const entry = this.#entries.get(nonce);
    if (!entry) return { status: 'unknown' };
    if (entry.used) return { status: 'reused', issuedAt: entry.issuedAt };
    entry.used = true;
    return { status: 'fresh', issuedAt: entry.issuedAt };
  }

  #purge(now: number): void {
    for (const [nonce, entry] of this.#entries) {
      if (now - entry.issuedAt <= this.#retentionMs) break;
      this.#entries.delete(nonce);
    }
  }
}

const NONCE_BYTES = 32; // base64url: 43 characters

/** A new nonce (base64url of 32 random bytes, 43 characters), remembered in `store` with its time. */
export async function issueNonceInto(store: NonceStore, now: Date): Promise<string> {
  const nonce = randomBytes(NONCE_BYTES).toString('base64url');
  await store.add(nonce, now.getTime());
  return nonce;
}

/**
 * Consumes `nonce` (atomically, whatever happens next) and throws unless it was issued here,
 * never presented before and is at most `maxAgeMs` old: `UnknownNonce`, `NonceReused`,
 * `NonceExpired`.
 */
export async function spendNonce(store: NonceStore, nonce: string, now: Date, maxAgeMs: number): Promise<void> {
  const lookup: NonceLookup = await store.consume(nonce, now.getTime());
  if (lookup.status === 'unknown') throw new VerifyError('UnknownNonce', 'The nonce was not issued by this site (or was forgotten)');
  if (lookup.status === 'reused') throw new VerifyError('NonceReused', 'The nonce was already used');
  const age = now.getTime() - lookup.issuedAt;
  if (age > maxAgeMs) throw new VerifyError('NonceExpired', `The nonce is ${Math.round(age / 1000)} s old (limit ${Math.round(maxAgeMs / 1000)} s)`);
}
