import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

/**
 * The real-PC/SC test rig: pcscd (started and ended by the test, by PID) with vsmartcard's
 * vpcd driver, whose two slots listen on TCP 35963 and 35964 for virtual cards.
 */
export const VPCD_PORTS = [35963, 35964] as const;
export const VPCD_READERS = ['Virtual PCD 00 00', 'Virtual PCD 00 01'] as const;

const PCSCD_SOCKET = '/run/pcscd/pcscd.comm';
const VPCD_DRIVER = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so';

function pcscdPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v pcscd || ls /usr/sbin/pcscd'], { encoding: 'utf8' });
  const path = found.stdout.trim().split('\n')[0];
  return path && existsSync(path) ? path : undefined;
}

function foreignPcscdRunning(): boolean {
  const pidFile = '/run/pcscd/pcscd.pid';
  if (!existsSync(pidFile)) return false;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Why the system tests cannot run here, or undefined when they can. */
export function systemRigProblem(): string | undefined {
  if (process.platform !== 'linux') return 'the pcscd + vpcd rig is Linux-only';
  if (!pcscdPath()) return 'pcscd is not installed (apt-get install pcscd)';
  if (!existsSync(VPCD_DRIVER)) return 'the vpcd driver is not installed (apt-get install vsmartcard-vpcd)';
  try {
    createRequire(import.meta.url)('pcsclite');
  } catch {
    return 'the pcsclite addon is not built (apt-get install libpcsclite-dev, then npm rebuild pcsclite)';
  }
  if (process.getuid?.() !== 0) return 'starting pcscd needs root (it owns /run/pcscd)';
  if (foreignPcscdRunning()) return 'a pcscd that these tests did not start is running; stop it first';
  return undefined;
}

/**
 * `describe` for tests that need something this machine may lack (`problem` says what, or is
 * undefined): skips with a printed reason, and fails instead when
 * CARDBRIDGE_REQUIRE_SYSTEM_TESTS=1 (CI), so nothing is skipped silently.
 */
export function describeGated(name: string, problem: string | undefined, body: () => void): void {
  if (!problem) return describe(name, body);
  if (process.env.CARDBRIDGE_REQUIRE_SYSTEM_TESTS === '1') {
    describe(name, () => {
      it('has what it needs', () => {
        throw new Error(`CARDBRIDGE_REQUIRE_SYSTEM_TESTS=1 but ${problem}`);
      });
    });
    return;
  }
  process.stderr.write(`[cardbridge] skipping "${name}": ${problem}\n`);
  describe.skip(name, body);
}

/** `describe` for tests that need the pcscd + vpcd rig. */
export function describeSystem(name: string, body: () => void): void {
  describeGated(name, systemRigProblem(), body);
}

function vpcdListening(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hexPort}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One pcscd process of ours, with a reader.conf.d that holds only the vpcd reader. */
export class Pcscd {
  private child: ChildProcess | undefined;
  private readonly confDir: string;
  log = '';

  constructor() {
    this.confDir = mkdtempSync(join(tmpdir(), 'cardbridge-pcscd-'));
    writeFileSync(
      join(this.confDir, 'vpcd'),
      ['FRIENDLYNAME "Virtual PCD"', 'DEVICENAME   /dev/null:0x8C7B', `LIBPATH      ${VPCD_DRIVER}`, 'CHANNELID    0x8C7B', ''].join('\n'),
    );
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(pcscdPath()!, ['--foreground', '--config', this.confDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await until('pcscd to listen', () => existsSync(PCSCD_SOCKET) && VPCD_PORTS.every(vpcdListening), 10_000);
  }

  /** Ends our pcscd: SIGTERM as a service manager would, or SIGKILL to simulate a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.confDir, { recursive: true, force: true });
  }
}
