import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CA_NICKNAME,
  MAX_LEAF_VALIDITY_DAYS,
  SYSTEM_STORE_FILE,
  defaultStateDir,
  ensureServerCertificate,
  issueLocalCertificates,
  pemBlocks,
  readCertificateState,
} from '../../../src/certs/index.js';
import { untrustCa } from '../../../src/certs/trust.js';
import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';
import { itWithTools } from '../../helpers/tools.js';

const DAY_MS = 24 * 3600 * 1000;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardbridge-certs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function nssCerts(db: string): Buffer[] {
  try {
    return pemBlocks(execFileSync('certutil', ['-L', '-d', `sql:${db}`, '-n', CA_NICKNAME, '-a'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch {
    return [];
  }
}

describe('local CA and server certificate', () => {
  it('issues a name-constrained CA and a leaf for exactly the served names', async () => {
    const issued = await issueLocalCertificates({ now: new Date('2026-01-01T00:00:00Z') });
    const ca = new X509Certificate(issued.caPem);
    const leaf = new X509Certificate(issued.leafPem);
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe('DNS:localhost, DNS:iccert.nhi.gov.tw, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(leaf.checkPrivateKey(createPrivateKey(issued.leafKeyPem))).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    const days = (new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime()) / DAY_MS;
    expect(days).toBeLessThanOrEqual(MAX_LEAF_VALIDITY_DAYS);
  });

  it('refuses a validity longer than 825 days', async () => {
    await expect(issueLocalCertificates({ validityDays: 826 })).rejects.toThrow(RangeError);
  });

  itWithTools(['openssl'])('verifies with openssl and carries the critical name constraints', async () => {
    await ensureServerCertificate(dir);
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'server.pem')])).toContain(': OK');
    const caText = openssl(['x509', '-in', join(dir, 'ca.pem'), '-noout', '-text']);
    expect(caText).toMatch(/X509v3 Name Constraints: critical\s+Permitted:\s+DNS:localhost\s+DNS:iccert\.nhi\.gov\.tw\s+IP:127\.0\.0\.1\/255\.255\.255\.255\s+IP:0:0:0:0:0:0:0:1\/FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF\s/);
    expect(caText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    const leafText = openssl(['x509', '-in', join(dir, 'server.pem'), '-noout', '-text']);
    expect(leafText).toMatch(/X509v3 Extended Key Usage:\s*\n\s*TLS Web Server Authentication/);
    expect(leafText).toMatch(/Subject: O\s*=\s*cardbridge, CN\s*=\s*localhost/);
    // The chain in server.pem is leaf then CA.
    expect(pemBlocks(readFileSync(join(dir, 'server.pem'), 'utf8'))[1]).toEqual(pemBlocks(readFileSync(join(dir, 'ca.pem'), 'utf8'))[0]);
  });

  itWithTools(['openssl'])('constrains the CA: a leaf it signs for any other name fails verification', async () => {
    const issued = await issueLocalCertificates({ leafDnsNames: ['localhost', 'www.example.com'] });
    writeFileSync(join(dir, 'ca.pem'), issued.caPem);
    writeFileSync(join(dir, 'leaf.pem'), issued.leafPem);
    let message = '';
    try {
      openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')]);
    } catch (e) {
      message = String((e as { stdout?: string; stderr?: string }).stdout) + String((e as { stderr?: string }).stderr);
    }
    expect(message).toContain('permitted subtree violation');
  });

  it('writes the key with mode 0600 and never the CA key', async () => {
    await ensureServerCertificate(dir);
    expect(readdirSync(dir).sort()).toEqual(['ca.pem', 'server-key.pem', 'server.pem']);
    expect(statSync(join(dir, 'server-key.pem')).mode & 0o777).toBe(0o600);
    const withKeys = readdirSync(dir).filter((f) => readFileSync(join(dir, f), 'utf8').includes('PRIVATE KEY'));
    expect(withKeys).toEqual(['server-key.pem']);
    // The one key on disk belongs to the leaf, not to the CA.
    const keyPublic = createPublicKey(createPrivateKey(readFileSync(join(dir, 'server-key.pem'), 'utf8'))).export({ type: 'spki', format: 'der' });
    const caPublic = new X509Certificate(readFileSync(join(dir, 'ca.pem'))).publicKey.export({ type: 'spki', format: 'der' });
    expect(Buffer.compare(keyPublic, caPublic)).not.toBe(0);
  });

  it('keeps valid certificates and replaces unusable ones', async () => {
    const first = await ensureServerCertificate(dir);
    expect(first.created).toBe(true);
    const again = await ensureServerCertificate(dir);
    expect(again.created).toBe(false);
    expect(again.cert).toBe(first.cert);
    writeFileSync(join(dir, 'server-key.pem'), (await issueLocalCertificates()).leafKeyPem);
    expect((await readCertificateState(dir)).problems).toContain('server-key.pem does not match server.pem');
    const replaced = await ensureServerCertificate(dir);
    expect(replaced.created).toBe(true);
    expect(replaced.ca).not.toBe(first.ca);
  });

  it('picks the state directory from the environment', () => {
    expect(defaultStateDir({ CARDBRIDGE_STATE_DIR: '/x/y' })).toBe('/x/y');
    expect(defaultStateDir({ STATE_DIRECTORY: '/var/lib/cardbridge' })).toBe('/var/lib/cardbridge');
  });

  it('explains a missing state directory', async () => {
    const io = captureIO();
    expect(await main(['certs', 'status', '--state-dir', join(dir, 'none'), '--system-store', 'none', '--home', dir], io)).toBe(3);
    expect(io.stderr[0]).toContain('the local CA has not been created yet');
    expect(io.stderr.slice(1).join('\n')).toContain('cardbridge certs init'); // the hint, after the catalogue's line
  });
});

describe('cardbridge certs', () => {
  const state = () => join(dir, 'state');
  const store = () => join(dir, 'store');
  const home = () => join(dir, 'home');
  const run = async (...args: string[]) => {
    const io = captureIO();
    const code = await main(['certs', ...args, '--state-dir', state(), '--system-store', store(), '--home', home()], io);
    return { code, io, text: io.stdout.join('\n') };
  };

  itWithTools(['certutil'])('init, trust (creating ~/.pki/nssdb), status, renew (replacing the old CA everywhere), untrust', async () => {
    expect((await run('init')).code).toBe(0);
    const firstCa = readFileSync(join(state(), 'ca.pem'), 'utf8');

    const trusted = await run('trust');
    expect(trusted.code).toBe(0);
    expect(trusted.text).toContain(`created NSS database ${join(home(), '.pki', 'nssdb')}`);
    expect(trusted.text).toContain('security add-trusted-cert');
    expect(trusted.text).toContain('certutil -addstore Root');
    expect(readFileSync(join(store(), SYSTEM_STORE_FILE), 'utf8')).toBe(firstCa);
    expect(nssCerts(join(home(), '.pki', 'nssdb'))).toEqual(pemBlocks(firstCa));

    // Trusting twice leaves one copy.
    expect((await run('trust')).code).toBe(0);
    expect(nssCerts(join(home(), '.pki', 'nssdb'))).toHaveLength(1);

    const status = await run('status', '--json');
    expect(status.code).toBe(0);
    const report = JSON.parse(status.text) as { ok: boolean; certificate: { leaf: { dnsNames: string[]; daysLeft: number } }; stores: { kind: string; ok: boolean }[] };
    expect(report.certificate.leaf.dnsNames).toEqual(['localhost', 'iccert.nhi.gov.tw']);
    expect(report.certificate.leaf.daysLeft).toBeGreaterThan(800);
    expect(report.stores.map((s) => [s.kind, s.ok])).toEqual([['system', true], ['nss', true]]);

    const renewed = await run('renew');
    expect(renewed.code).toBe(0);
    const newCa = readFileSync(join(state(), 'ca.pem'), 'utf8');
    expect(newCa).not.toBe(firstCa);
    expect(readFileSync(join(store(), SYSTEM_STORE_FILE), 'utf8')).toBe(newCa);
    expect(nssCerts(join(home(), '.pki', 'nssdb'))).toEqual(pemBlocks(newCa));
    expect(readdirSync(state()).sort()).toEqual(['ca.pem', 'server-key.pem', 'server.pem']);

    const untrusted = await run('untrust');
    expect(untrusted.code).toBe(0);
    expect(nssCerts(join(home(), '.pki', 'nssdb'))).toHaveLength(0);
    expect(readdirSync(store())).toEqual([]);

    const after = await run('status');
    expect(after.code).toBe(1);
    expect(after.text).toMatch(/FAIL not in the system store\n\s+→ Run "sudo cardbridge certs trust"/);
  });

  it('says which package to install when certutil is missing', async () => {
    expect((await run('init')).code).toBe(0);
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const trusted = await run('trust');
      expect(trusted.code).toBe(1);
      expect(trusted.text).toContain('certutil is not installed');
      expect(trusted.text).toContain('sudo apt-get install libnss3-tools');
    } finally {
      process.env.PATH = saved;
    }
  });

  it('rejects an unknown action as a usage error', async () => {
    const io = captureIO();
    expect(await main(['certs', 'burn'], io)).toBe(2);
    expect(io.stderr[0]).toContain('unknown certs action "burn"');
  });
});

describe('trust as root in another user\'s home', () => {
  const asRoot = process.getuid?.() === 0 ? itWithTools(['certutil']) : it.skip;
  asRoot('refuses to follow a symlink planted under the home', async () => {
    const { trustCa } = await import('../../../src/certs/trust.js');
    const home = join(dir, 'home');
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(home);
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(home, '.pki'));
    const { caPem } = await issueLocalCertificates();
    const [result] = await trustCa(caPem, { systemStoreDir: null, updateCommand: null, systemBundle: null, homes: [home], certutil: 'certutil' });
    expect(result).toMatchObject({ ok: false, detail: `${join(home, '.pki')} is a symbolic link; not following it as root` });
    expect(readdirSync(elsewhere)).toEqual([]);
  });
});

describe('untrusting in a Debian-style system store', () => {
  // update-ca-certificates notices a new local certificate but not a removed one: its links and
  // the hooks' copies (Java's keystore) would keep the CA trusted.
  it('removes the store links update-ca-certificates left and tells its hooks the CA is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cardbridge-untrust-'));
    try {
      const store = join(dir, 'local');
      const etc = join(dir, 'etc-ssl-certs');
      const hooks = join(dir, 'update.d');
      for (const d of [store, etc, hooks]) mkdirSync(d);
      writeFileSync(join(store, 'cardbridge-local-ca.crt'), 'pem');
      writeFileSync(join(etc, 'ca-certificates.crt'), 'bundle');
      symlinkSync(join(store, 'cardbridge-local-ca.crt'), join(etc, 'cardbridge-local-ca.pem'));
      symlinkSync('cardbridge-local-ca.pem', join(etc, '04695c54.0'));
      symlinkSync('other.pem', join(etc, 'abcdef01.0'));
      const heard = join(dir, 'heard');
      writeFileSync(join(hooks, 'record'), `#!/bin/sh\ncat >> '${heard}'\n`, { mode: 0o755 });
      const results = await untrustCa({ systemStoreDir: store, updateCommand: ['true'], systemBundle: join(etc, 'ca-certificates.crt'), updateHooksDir: hooks, homes: [], certutil: null });
      expect(results).toEqual([expect.objectContaining({ kind: 'system', ok: true })]);
      expect(readdirSync(etc).sort()).toEqual(['abcdef01.0', 'ca-certificates.crt']);
      expect(readFileSync(heard, 'utf8')).toBe(`-${join(etc, 'cardbridge-local-ca.pem')}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
