import { InMemoryNonceStore, type NonceLookup, type NonceStore, checkNonceStoreContract } from '../../../src/verify/index.js';

/** A shared back end reached by several "instances", like Redis behind two processes. */
class SharedMap {
  readonly map = new Map<string, { issuedAt: number; used: boolean }>();
}
const tick = () => new Promise((r) => setImmediate(r));

/** Looks up, yields (a network round trip), then marks: two instances can both see "fresh". */
class RacyStore implements NonceStore {
  constructor(private readonly shared: SharedMap) {}
  async add(nonce: string, issuedAt: number): Promise<void> {
    await tick();
    this.shared.map.set(nonce, { issuedAt, used: false });
  }
  async consume(nonce: string): Promise<NonceLookup> {
    const stored = this.shared.map.get(nonce);
    const entry = stored && { ...stored }; // GET: a copy of the value, as over a network
    await tick();
    if (!entry) return { status: 'unknown' };
    if (entry.used) return { status: 'reused', issuedAt: entry.issuedAt };
    this.shared.map.set(nonce, { ...entry, used: true }); // SET, a round trip later
    return { status: 'fresh', issuedAt: entry.issuedAt };
  }
}

/** The same, but the check-and-mark happens in one step on the back end (like a Lua script). */
class AtomicStore extends RacyStore {
  constructor(private readonly backend: SharedMap) {
    super(backend);
  }
  override async consume(nonce: string): Promise<NonceLookup> {
    const entry = this.backend.map.get(nonce);
    const result: NonceLookup = !entry
      ? { status: 'unknown' }
      : entry.used
        ? { status: 'reused', issuedAt: entry.issuedAt }
        : { status: 'fresh', issuedAt: entry.issuedAt };
    if (entry) entry.used = true;
    await tick();
    return result;
  }
}

/** Forgets nonces on the other instance: not shared at all. */
const separate = (): [NonceStore, NonceStore] => [new InMemoryNonceStore(), new InMemoryNonceStore()];

describe('checkNonceStoreContract', () => {
  it('passes the in-memory store (one instance) and an atomic shared store', async () => {
    const memory = new InMemoryNonceStore();
    expect(await checkNonceStoreContract(() => [memory, memory])).toEqual([]);
    expect(
      await checkNonceStoreContract(() => {
        const shared = new SharedMap();
        return [new AtomicStore(shared), new AtomicStore(shared)];
      }),
    ).toEqual([]);
  });

  it('reports a store whose consume is not atomic across instances', async () => {
    const problems = await checkNonceStoreContract(() => {
      const shared = new SharedMap();
      return [new RacyStore(shared), new RacyStore(shared)];
    });
    expect(problems.join('\n')).toMatch(/concurrent consume.*fresh/);
  });

  it('reports instances that do not share their nonces', async () => {
    const problems = await checkNonceStoreContract(separate);
    expect(problems.join('\n')).toMatch(/other instance/);
  });
});
