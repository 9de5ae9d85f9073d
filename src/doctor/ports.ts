import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';

/**
 * Who holds a TCP port, from /proc: the LISTEN sockets in /proc/net/tcp{,6} give the socket
 * inode, and /proc/<pid>/fd/* links named `socket:[inode]` give the process. Other users'
 * processes are only visible to root; then the owner stays unknown but the port still shows
 * as taken.
 */

export interface ListeningSocket {
  address: string;
  port: number;
  inode: number;
  uid: number;
}

export interface ProcessInfo {
  pid: number;
  /** /proc/<pid>/comm, e.g. "node" or "HiPKILocalSignS". */
  name: string;
  /** The command line, arguments separated by spaces. */
  commandLine: string;
  argv: string[];
}

const TCP_LISTEN = '0A';

function ipv4(hex: string): string {
  // Little-endian 32-bit word as printed by the kernel.
  const bytes = [0, 1, 2, 3].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).reverse();
  return bytes.join('.');
}

function ipv6(hex: string): string {
  // Four little-endian 32-bit words.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let i = 3; i >= 0; i--) bytes.push(parseInt(word.slice(i * 2, i * 2 + 2), 16));
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const text = groups.join(':');
  if (text === '0:0:0:0:0:0:0:0') return '::';
  if (text === '0:0:0:0:0:0:0:1') return '::1';
  if (text.startsWith('0:0:0:0:0:ffff:')) return `::ffff:${ipv4(hex.slice(24))}`;
  return text;
}

/** Parses /proc/net/tcp or /proc/net/tcp6 and keeps the listening sockets. */
export function parseProcNetTcp(text: string, family: 4 | 6): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || cols[3] !== TCP_LISTEN) continue;
    const [addressHex = '', portHex = ''] = cols[1]!.split(':');
    sockets.push({
      address: family === 4 ? ipv4(addressHex) : ipv6(addressHex),
      port: parseInt(portHex, 16),
      uid: Number(cols[7]),
      inode: Number(cols[9]),
    });
  }
  return sockets;
}

export function listeningSockets(procRoot = '/proc'): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const [file, family] of [['tcp', 4], ['tcp6', 6]] as const) {
    try {
      sockets.push(...parseProcNetTcp(readFileSync(join(procRoot, 'net', file), 'utf8'), family));
    } catch {
      // no IPv6, or no /proc (not Linux)
    }
  }
  return sockets;
}

/** Processes holding each of the given socket inodes (those we are allowed to see). */
export function socketOwners(inodes: number[], procRoot = '/proc'): Map<number, ProcessInfo> {
  const wanted = new Set(inodes.map((i) => `socket:[${i}]`));
  const owners = new Map<number, ProcessInfo>();
  if (wanted.size === 0) return owners;
  let pids: string[] = [];
  try {
    pids = readdirSync(procRoot).filter((d) => /^\d+$/.test(d));
  } catch {
    return owners;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(procRoot, pid, 'fd'));
    } catch {
      continue; // gone, or another user's process
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join(procRoot, pid, 'fd', fd));
      } catch {
        continue;
      }
      if (!wanted.has(target)) continue;
      const inode = Number(target.slice(8, -1));
      if (!owners.has(inode)) owners.set(inode, describeProcess(Number(pid), procRoot));
    }
  }
  return owners;
}

export function describeProcess(pid: number, procRoot = '/proc'): ProcessInfo {
  const read = (file: string) => {
    try {
      return readFileSync(join(procRoot, String(pid), file), 'utf8');
    } catch {
      return '';
    }
  };
  const argv = read('cmdline').split('\0').filter(Boolean);
  return { pid, name: read('comm').trim() || basename(argv[0] ?? '?'), commandLine: argv.join(' '), argv };
}

export interface PortHolder {
  sockets: ListeningSocket[];
  /** Owners found (empty when the port is free, or when we may not see the owner). */
  processes: ProcessInfo[];
}

/** The listening sockets on a port that would collide with a loopback listener, and their owners. */
export function portHolders(port: number, procRoot = '/proc'): PortHolder {
  const collides = new Set(['127.0.0.1', '0.0.0.0', '::', '::1', '::ffff:127.0.0.1']);
  const sockets = listeningSockets(procRoot).filter((s) => s.port === port && (collides.has(s.address) || s.address.startsWith('127.')));
  const owners = socketOwners(
    sockets.map((s) => s.inode),
    procRoot,
  );
  const processes = [...new Map([...owners.values()].map((p) => [p.pid, p])).values()];
  return { sockets, processes };
}

/** Fallback where /proc is missing: can we listen on the port ourselves? */
export function canListen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
