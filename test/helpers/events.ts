import type { RegistryEvent, ReaderRegistry } from '../../src/readers/types.js';

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
