import type { RegistryEvent, ReaderRegistry } from '../../src/readers/types.js';
import type { VpcdCardSlot } from '../../src/emulator/vpcd-client.js';

/** Records registry events and lets a test wait for one, with a deadline instead of a hang. */
export class EventRecorder {
  readonly events: RegistryEvent[] = [];
  private waiters: { match: (e: RegistryEvent) => boolean; resolve: (e: RegistryEvent) => void }[] = [];

  constructor(registry: ReaderRegistry) {
    registry.on('event', (event) => {
      this.events.push(event);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(event)) return true;
        w.resolve(event);
        return false;
      });
    });
  }

  /** Waits for the next matching event (or returns one seen since `since`). */
  waitFor(match: (e: RegistryEvent) => boolean, timeoutMs = 5000, since = this.events.length): Promise<RegistryEvent> {
    const seen = this.events.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; saw ${JSON.stringify(this.events.slice(since))}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }
}

/**
 * Takes every card out of vpcd after a test — connected slots and those still retrying, so none
 * keeps reconnecting — and waits until the registry has seen each connected one leave.
 */
export async function unplugAll(slots: VpcdCardSlot[], events: EventRecorder): Promise<void> {
  const since = events.events.length;
  const all = slots.splice(0);
  const removing = all.filter((s) => s.connected);
  await Promise.all(all.map((s) => s.remove()));
  for (let i = 0; i < removing.length; i++) await events.waitFor((e) => e.type === 'card-removed', 5000, since + i);
}
