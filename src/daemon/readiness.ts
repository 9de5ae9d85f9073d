import { rm } from 'node:fs/promises';
import { VERSION } from '../version.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { ListenerStatus } from './daemon.js';

/**
 * The one line `cardbridge serve` prints on standard output when every listener that could
 * start is accepting connections, and the content of `--ready-file`. Scripts and CI wait for
 * it (or run `cardbridge wait`) instead of sleeping; `listeners` maps names to URLs.
 */
export interface ReadyAnnouncement {
  cardbridge: 'ready';
  version: string;
  pid: number;
  mock: boolean;
  stateDir: string;
  listeners: Record<string, string>;
  /** Listeners that did not start, with why (absent when all did). */
  failed?: Record<string, string>;
}

export function readyAnnouncement(daemon: { stateDir: string; listeners: ListenerStatus[] }, mock: boolean): ReadyAnnouncement {
  const listeners: Record<string, string> = {};
  const failed: Record<string, string> = {};
  for (const l of daemon.listeners) {
    if (l.url) listeners[l.name] = l.url;
    else if (l.error) failed[l.name] = l.error;
  }
  return {
    cardbridge: 'ready',
    version: VERSION,
    pid: process.pid,
    mock,
    stateDir: daemon.stateDir,
    listeners,
    ...(Object.keys(failed).length > 0 ? { failed } : {}),
  };
}

/** Written atomically, so a waiter never reads half a file; removed when the daemon stops. */
export async function writeReadyFile(path: string, announcement: ReadyAnnouncement): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(announcement)}\n`, 0o644);
}

export async function removeReadyFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
