import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where a root-installed service keeps its state (systemd StateDirectory=cardbridge). */
export const SYSTEM_STATE_DIR = '/var/lib/cardbridge';

/**
 * The state directory: $CARDBRIDGE_STATE_DIR; else systemd's $STATE_DIRECTORY; else
 * /var/lib/cardbridge when running as root or when a system install created it; else
 * $XDG_STATE_HOME/cardbridge (~/.local/state/cardbridge).
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CARDBRIDGE_STATE_DIR) return env.CARDBRIDGE_STATE_DIR;
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0]!;
  if (process.getuid?.() === 0 || existsSync(SYSTEM_STATE_DIR)) return SYSTEM_STATE_DIR;
  return join(env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state'), 'cardbridge');
}
