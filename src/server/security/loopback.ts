import net from 'node:net';

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return net.isIPv6(address) && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(address);
}

/**
 * The Host header values a listener answers to: each loopback name with the listener's port.
 * Anything else is a DNS-rebinding attempt (a hostile name resolving to 127.0.0.1) or a
 * misdirected request, and is refused before any handler runs.
 */
export function allowedHosts(names: readonly string[], port: number): Set<string> {
  const hosts = new Set<string>();
  for (const name of names) {
    const host = net.isIPv6(name) ? `[${name}]` : name.toLowerCase();
    hosts.add(`${host}:${port}`);
  }
  return hosts;
}

export function isAllowedHost(hostHeader: string | undefined, allowed: Set<string>): boolean {
  return hostHeader !== undefined && allowed.has(hostHeader.toLowerCase());
}
