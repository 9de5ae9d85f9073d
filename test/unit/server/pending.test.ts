import { PendingRequests } from '../../../src/server/native/pending.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A PIN request whose work records whether it ran. */
function pinRequest(pending: PendingRequests, ran: string[] = []) {
  return pending.create({
    origin: 'https://www.example.gov.tw',
    kind: 'pin',
    operation: 'sign',
    card: 'test card',
    cardKey: 'card-1',
    run: async ({ pin }) => {
      ran.push(pin ?? '');
      await sleep(300);
      return 'signed';
    },
  });
}

describe('a pending request whose page went away', () => {
  const ORIGIN = 'https://www.example.gov.tw';
  let pending: PendingRequests;
  afterEach(() => pending.close());

  it('is cancelled when the page stops asking about it, so the card is free again', async () => {
    pending = new PendingRequests({ abandonMs: 150, abandonCheckMs: 25 });
    const { id } = pinRequest(pending);
    await sleep(400);
    const view = pending.view(id, ORIGIN);
    expect(view).toMatchObject({ state: 'failed', problem: { code: 'Cancelled' } });
    expect(view.problem?.detail).toMatch(/page .* went away/);
    // and a new PIN request for the same card is accepted
    expect(() => pinRequest(pending)).not.toThrow();
  });

  it('stays open while the page long-polls, and is cancelled soon after the poll’s connection drops', async () => {
    pending = new PendingRequests({ abandonMs: 150, abandonCheckMs: 25 });
    const { id } = pinRequest(pending);
    const connection = new AbortController();
    const poll = pending.wait(id, ORIGIN, 5_000, connection.signal);
    await sleep(400);
    expect(pending.view(id, ORIGIN).state).toBe('pending');
    connection.abort(); // the browser was closed
    await poll;
    await sleep(300);
    expect(pending.view(id, ORIGIN)).toMatchObject({ state: 'failed', problem: { code: 'Cancelled' } });
  });

  it('stays open while the page polls without waiting, as long as it keeps polling', async () => {
    pending = new PendingRequests({ abandonMs: 150, abandonCheckMs: 25 });
    const { id } = pinRequest(pending);
    for (let i = 0; i < 8; i++) {
      await sleep(50);
      await pending.wait(id, ORIGIN, 0);
    }
    expect(pending.view(id, ORIGIN).state).toBe('pending');
  });

  it('is never cancelled while the card is working on the user’s answer', async () => {
    pending = new PendingRequests({ abandonMs: 50, abandonCheckMs: 10 });
    const ran: string[] = [];
    const { id, secret } = pinRequest(pending, ran);
    const answer = pending.submit(id, secret, { decision: 'allow', pin: '123456' });
    await sleep(150); // the page is gone, the card is still signing
    expect((await answer).state).toBe('done');
    expect(ran).toEqual(['123456']);
  });
});
