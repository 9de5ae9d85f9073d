import { randomBytes } from 'node:crypto';
import type { NonceStore } from './nonce-store.js';

/**
 * Checks a {@link NonceStore} implementation against the contract in nonce-store.ts, through
 * two instances that share one back end (for the in-memory store: the same object twice).
 * Returns what is wrong, one sentence each; empty means the contract held in this run. Meant for
 * a site's own test suite next to its shared store (a race that did not happen in this run can
 * still exist).
 */
export async function checkNonceStoreContract(
  makeInstances: () => [NonceStore, NonceStore] | Promise<[NonceStore, NonceStore]>,
  options: { now?: number; concurrency?: number } = {},
): Promise<string[]> {
  const problems: string[] = [];
  const now = options.now ?? Date.now();
  const concurrency = options.concurrency ?? 16;
  const [a, b] = await makeInstances();
  const fresh = () => randomBytes(32).toString('base64url');

  const unknown = await b.consume(fresh(), now);
  if (unknown.status !== 'unknown') problems.push(`a nonce never added was "${unknown.status}", not "unknown"`);

  const n1 = fresh();
  await a.add(n1, now - 1000);
  const first = await b.consume(n1, now);
  if (first.status !== 'fresh') problems.push(`a nonce added on one instance was "${first.status}" on the other instance, not "fresh"`);
  else if (first.issuedAt !== now - 1000) problems.push(`issuedAt came back as ${first.issuedAt}, not the ${now - 1000} given`);
  const second = await a.consume(n1, now);
  if (second.status !== 'reused') problems.push(`a consumed nonce was "${second.status}" when presented again, not "reused"`);

  const n2 = fresh();
  await a.add(n2, now);
  const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => (i % 2 === 0 ? a : b).consume(n2, now)));
  const freshCount = results.filter((r) => r.status === 'fresh').length;
  if (freshCount !== 1) problems.push(`${concurrency} concurrent consume calls for one nonce gave ${freshCount} "fresh" results, not exactly 1`);
  return problems;
}
