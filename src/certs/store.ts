import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CardBridgeError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { defaultStateDir } from '../config/paths.js';
import { SERVED_DNS_NAMES, SERVED_IP_ADDRESSES, issueLocalCertificates, pemBlocks, type IssueOptions } from './local-ca.js';

// Re-exported for the certificate commands' callers; they live in config/ and util/.
export { SYSTEM_STATE_DIR, defaultStateDir } from '../config/paths.js';
export { writeFileAtomic } from '../util/atomic-file.js';

/** Files in the state directory. The CA's private key is never among them. */
export const CERT_FILES = { ca: 'ca.pem', server: 'server.pem', key: 'server-key.pem' } as const;

/** Renew (or warn) when fewer days than this are left. */
export const RENEW_WITHIN_DAYS = 30;

export interface ServerCertificate {
  stateDir: string;
  /** PEM: the leaf then the CA. */
  cert: string;
  /** PEM PKCS#8 private key of the leaf. */
  key: string;
  /** PEM of the CA. */
  ca: string;
  notAfter: Date;
  /** True when this call generated new certificates. */
  created: boolean;
}

function certError(message: string, hint: string, cause?: unknown): CardBridgeError {
  return new CardBridgeError('Unavailable', message, { hint, ...(cause === undefined ? {} : { cause }) });
}

/** Generates a new CA + leaf and writes them (ca.pem, server.pem, server-key.pem 0600). */
export async function writeNewCertificates(stateDir: string, options: IssueOptions = {}): Promise<ServerCertificate> {
  const issued = await issueLocalCertificates({ hostLabel: hostname(), ...options });
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw certError(`Cannot create the state directory ${stateDir}: ${(e as Error).message}`, 'Run as root for the system install, or pass --state-dir DIR (or set CARDBRIDGE_STATE_DIR).', e);
  }
  const cert = issued.leafPem + issued.caPem;
  try {
    // Key first: a server.pem never exists without its key.
    await writeFileAtomic(join(stateDir, CERT_FILES.key), issued.leafKeyPem, 0o600);
    await writeFileAtomic(join(stateDir, CERT_FILES.server), cert, 0o644);
    await writeFileAtomic(join(stateDir, CERT_FILES.ca), issued.caPem, 0o644);
    // Root renewing the service's certificates: the files stay the service user's.
    const owner = await stat(stateDir);
    if (process.getuid?.() === 0 && owner.uid !== 0) {
      for (const f of Object.values(CERT_FILES)) await chown(join(stateDir, f), owner.uid, owner.gid);
    }
  } catch (e) {
    throw certError(`Cannot write certificates to ${stateDir}: ${(e as Error).message}`, 'Check the directory\'s owner and permissions, or pass --state-dir DIR.', e);
  }
  return { stateDir, cert, key: issued.leafKeyPem, ca: issued.caPem, notAfter: issued.notAfter, created: true };
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  dnsNames: string[];
  ipAddresses: string[];
  notBefore: Date;
  notAfter: Date;
  daysLeft: number;
  fingerprint256: string;
}

export interface CertificateState {
  stateDir: string;
  ca: CertificateInfo & { pem: string };
  leaf: CertificateInfo;
  /** Problems that make the files unusable (missing names, wrong chain, key mismatch, expired). */
  problems: string[];
}

function describe(x509: X509Certificate, now: Date): CertificateInfo {
  const san = x509.subjectAltName ?? '';
  const entries = san.split(/,\s*/).filter(Boolean);
  const notAfter = new Date(x509.validTo);
  return {
    subject: x509.subject.replace(/\n/g, ', '),
    issuer: x509.issuer.replace(/\n/g, ', '),
    dnsNames: entries.filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4)),
    ipAddresses: entries.filter((e) => e.startsWith('IP Address:')).map((e) => e.slice(11).toLowerCase().replace(/^0:0:0:0:0:0:0:1$/, '::1')),
    notBefore: new Date(x509.validFrom),
    notAfter,
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / (24 * 3600 * 1000)),
    fingerprint256: x509.fingerprint256,
  };
}

/**
 * Reads and checks the certificate files. Throws when they are missing or unreadable; returns
 * the problems found when they exist but are not fit to serve.
 */
export async function readCertificateState(stateDir: string, now = new Date()): Promise<CertificateState> {
  return (await readCertificateFiles(stateDir, now)).state;
}

/** The three PEM files as read, and their check: the daemon serves what was checked, read once. */
async function readCertificateFiles(stateDir: string, now: Date): Promise<{ state: CertificateState; serverPem: string; keyPem: string }> {
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(join(stateDir, file), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw certError(
        code === 'ENOENT' ? `No ${file} in ${stateDir}: the local CA has not been created yet.` : `Cannot read ${join(stateDir, file)}: ${(e as Error).message}`,
        code === 'ENOENT' ? 'Run "sudo cardbridge certs init" (or pass --state-dir DIR).' : 'Run as root or as the cardbridge user, or pass --state-dir DIR.',
        e,
      );
    }
  };
  const [caPem, serverPem, keyPem] = [await read(CERT_FILES.ca), await read(CERT_FILES.server), await read(CERT_FILES.key)];
  const caDer = pemBlocks(caPem)[0];
  const chain = pemBlocks(serverPem);
  if (!caDer || !chain[0]) throw certError(`The certificate files in ${stateDir} are not PEM certificates.`, 'Run "sudo cardbridge certs renew".');
  const ca = new X509Certificate(caDer);
  const leaf = new X509Certificate(chain[0]);
  const problems: string[] = [];
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) problems.push('server.pem was not issued by ca.pem');
  if (chain[1] && !chain[1].equals(caDer)) problems.push('server.pem carries a different CA than ca.pem');
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) problems.push('server-key.pem does not match server.pem');
  } catch {
    problems.push('server-key.pem is not a readable private key');
  }
  const leafInfo = describe(leaf, now);
  const caInfo = describe(ca, now);
  for (const n of SERVED_DNS_NAMES) if (!leafInfo.dnsNames.includes(n)) problems.push(`the certificate does not name ${n}`);
  for (const a of SERVED_IP_ADDRESSES) if (!leafInfo.ipAddresses.includes(a)) problems.push(`the certificate does not name ${a}`);
  if (leafInfo.notBefore > now) problems.push('the certificate is not valid yet (is the clock right?)');
  if (leafInfo.notAfter <= now) problems.push(`the certificate expired on ${leafInfo.notAfter.toISOString()}`);
  if (caInfo.notAfter <= now) problems.push(`the CA expired on ${caInfo.notAfter.toISOString()}`);
  return { state: { stateDir, ca: { ...caInfo, pem: caPem }, leaf: leafInfo, problems }, serverPem, keyPem };
}

/**
 * What every HTTPS listener calls at start: the server certificate and key from the state
 * directory, generated on first start (a development CA, trusted nowhere until
 * `cardbridge certs trust`) or when the files there are unusable. A certificate close to
 * expiry is served as is: renewing means a new CA, which only `certs renew` (as root, so it
 * can re-trust) should do.
 */
export async function ensureServerCertificate(stateDir: string = defaultStateDir()): Promise<ServerCertificate> {
  const present = Object.values(CERT_FILES).every((f) => existsSync(join(stateDir, f)));
  if (present) {
    const { state, serverPem, keyPem } = await readCertificateFiles(stateDir, new Date());
    if (state.problems.length === 0) {
      await chmod(join(stateDir, CERT_FILES.key), 0o600).catch(() => undefined);
      return { stateDir, cert: serverPem, key: keyPem, ca: state.ca.pem, notAfter: state.leaf.notAfter, created: false };
    }
  }
  return writeNewCertificates(stateDir);
}
