import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { captureIO } from './capture-io.js';

export interface TrustedHome {
  /** The throw-away directory holding everything below; the test removes it. */
  dir: string;
  /** $HOME while the test runs: its NSS database (~/.pki/nssdb, where Chromium looks) trusts the CA. */
  home: string;
  /** The state directory with the local CA and server certificate. */
  state: string;
  /** Puts $HOME and $SUDO_USER back as they were. */
  restore(): void;
}

/**
 * What a citizen's browser sees after the trust step, for browser tests: a fresh local CA
 * (`cardbridge certs init`) trusted in a throw-away $HOME's NSS database (`certs trust`, no
 * system store). Sets $HOME and clears $SUDO_USER (the trust command would follow it to the real
 * user's home) until `restore()`.
 */
export async function trustedHome(prefix: string): Promise<TrustedHome> {
  const saved = { home: process.env.HOME, sudo: process.env.SUDO_USER };
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  const state = join(dir, 'state');
  process.env.HOME = home;
  delete process.env.SUDO_USER;
  const restore = () => {
    process.env.HOME = saved.home;
    if (saved.sudo !== undefined) process.env.SUDO_USER = saved.sudo;
  };
  for (const action of ['init', 'trust']) {
    const io = captureIO();
    if ((await main(['certs', action, '--state-dir', state, '--system-store', 'none'], io)) !== 0) {
      restore();
      throw new Error(`certs ${action} failed: ${[...io.stdout, ...io.stderr].join('\n')}`);
    }
  }
  return { dir, home, state, restore };
}
