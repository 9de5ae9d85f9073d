/**
 * The benchmark's virtual cards, in a process of their own so the load generator's event loop
 * never delays a card's answer (and the card never delays the load generator).
 *
 * Driven over IPC by bench/run.ts:
 *   { id, cmd: 'insert', slot: 0|1, card: 'nhi'|'moica' } → { id, at }  (at: epoch ms when vpcd accepted the connection)
 *   { id, cmd: 'remove', slot }                          → { id, at }
 *   { id, cmd: 'received', slot, from }                  → { id, apdus: hex[] , total }
 */
import { performance } from 'node:perf_hooks';
import { VpcdCardSlot } from '../src/emulator/vpcd-client.js';
import type { VirtualCard } from '../src/emulator/virtual-card.js';
import { VirtualNhiCard } from '../src/emulator/nhi/virtual-nhi-card.js';
import { VirtualMoicaGen1Card } from '../src/emulator/moica/virtual-moica-gen1.js';
import { getTestPki } from '../src/emulator/moica/test-pki.js';
import { VPCD_PORTS } from '../test/helpers/system-rig.js';

interface Request {
  id: number;
  cmd: 'insert' | 'remove' | 'received';
  slot: 0 | 1;
  card?: 'nhi' | 'moica';
  from?: number;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

const slots: (VpcdCardSlot | undefined)[] = [undefined, undefined];
const cards: ({ received: Buffer[] } & VirtualCard)[] = [];

async function makeCard(kind: 'nhi' | 'moica'): Promise<{ received: Buffer[] } & VirtualCard> {
  if (kind === 'nhi') return new VirtualNhiCard();
  return new VirtualMoicaGen1Card(await getTestPki(), { pin: '123456' });
}

async function handle(request: Request): Promise<Record<string, unknown>> {
  switch (request.cmd) {
    case 'insert': {
      const card = cards[request.slot] ?? (await makeCard(request.card ?? 'nhi'));
      cards[request.slot] = card;
      const slot = (slots[request.slot] ??= new VpcdCardSlot(card, { port: VPCD_PORTS[request.slot] }));
      const requestedAt = now();
      let at = 0;
      const onInserted = () => (at = now());
      slot.once('inserted', onInserted);
      await slot.insert();
      slot.off('inserted', onInserted);
      return { requestedAt, at: at || requestedAt };
    }
    case 'remove': {
      await slots[request.slot]?.remove();
      return { at: now() };
    }
    case 'received': {
      const received = cards[request.slot]?.received ?? [];
      return { apdus: received.slice(request.from ?? 0).map((b) => b.toString('hex')), total: received.length };
    }
  }
}

process.on('message', (message: Request) => {
  handle(message).then(
    (answer) => process.send?.({ id: message.id, ...answer }),
    (e: Error) => process.send?.({ id: message.id, error: e.message }),
  );
});
process.on('disconnect', () => {
  void Promise.all(slots.map((s) => s?.remove())).finally(() => process.exit(0));
});
process.send?.({ id: 0, ready: true });
