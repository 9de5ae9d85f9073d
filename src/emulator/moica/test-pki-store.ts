import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { CardBridgeError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { type MoicaTestPki, type TestCertificate, type TestHolder, createTestPki, toPem } from './test-pki.js';

/**
 * The test PKI kept in a directory, so a relying site's back end and `cardbridge serve --mock
 * --pki DIR` (started in either order, in different processes) trust the same CA. The keys
 * are generated on first use on the machine that runs the tests; nothing here is ever shipped.
 */
export const TEST_PKI_FILES = {
  /** Certificates, holder and private keys (mode 0600): what the virtual cards need. */
  keys: 'test-pki.json',
  /** Root then issuing CA, PEM: what a back end trusts. */
  caBundle: 'ca-bundle.pem',
  root: 'root-ca.pem',
  issuing: 'issuing-ca.pem',
} as const;

const ROLES = ['root', 'issuing', 'sign', 'encrypt'] as const;
type Role = (typeof ROLES)[number];

interface StoredPki {
  format: 'cardbridge-test-pki';
  version: 1;
  holder: TestHolder;
  certificates: Record<Role, string>;
  privateKeys: Record<Role, string>;
}

function serialize(pki: MoicaTestPki): string {
  const stored: StoredPki = {
    format: 'cardbridge-test-pki',
    version: 1,
    holder: pki.holder,
    certificates: Object.fromEntries(ROLES.map((r) => [r, pki[r].pem])) as Record<Role, string>,
    privateKeys: Object.fromEntries(ROLES.map((r) => [r, pki[r].privateKey.export({ type: 'pkcs8', format: 'pem' }) as string])) as Record<Role, string>,
  };
  return `${JSON.stringify(stored, null, 2)}\n`;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64');
}

function parse(text: string, file: string): MoicaTestPki {
  const damaged = (why: string) =>
    new CardBridgeError('InvalidInput', `${file} is not a cardbridge test PKI (${why})`, { hint: 'Delete the directory to have a new test PKI made, or point --pki elsewhere.' });
  let stored: StoredPki;
  try {
    stored = JSON.parse(text) as StoredPki;
  } catch {
    throw damaged('not JSON');
  }
  if (stored?.format !== 'cardbridge-test-pki' || stored.version !== 1) throw damaged('unknown format');
  const entry = (role: Role): TestCertificate => {
    const pem = stored.certificates?.[role];
    const key = stored.privateKeys?.[role];
    if (typeof pem !== 'string' || typeof key !== 'string') throw damaged(`no ${role} certificate or key`);
    try {
      const der = pemToDer(pem);
      const privateKey = createPrivateKey(key);
      return { der, pem: toPem(der), certificate: pkijs.Certificate.fromBER(der), privateKey, publicKey: createPublicKey(privateKey) };
    } catch {
      throw damaged(`the ${role} certificate or key does not parse`);
    }
  };
  const [root, issuing, sign, encrypt] = ROLES.map(entry) as [TestCertificate, TestCertificate, TestCertificate, TestCertificate];
  return { root, issuing, sign, encrypt, holder: stored.holder, caBundlePem: root.pem + issuing.pem };
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * The test PKI in `dir`: loaded when there, else created and written. Creation publishes the
 * file with link(2), which fails if another process got there first; the loser loads the
 * winner's PKI, so two processes starting together still share one CA.
 */
export async function loadOrCreateTestPki(dir: string): Promise<MoicaTestPki> {
  const file = join(dir, TEST_PKI_FILES.keys);
  const existing = await readIfPresent(file);
  let pki: MoicaTestPki;
  if (existing !== undefined) {
    pki = parse(existing, file);
  } else {
    await mkdir(dir, { recursive: true });
    const created = await createTestPki();
    const temporary = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(temporary, serialize(created), { mode: 0o600, flag: 'wx' });
    try {
      await link(temporary, file);
      pki = created;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      pki = parse(await readFile(file, 'utf8'), file);
    } finally {
      await rm(temporary, { force: true });
    }
  }
  // The public files are derived: rewritten (atomically) so they always match the keys.
  await writeFileAtomic(join(dir, TEST_PKI_FILES.caBundle), pki.caBundlePem, 0o644);
  await writeFileAtomic(join(dir, TEST_PKI_FILES.root), pki.root.pem, 0o644);
  await writeFileAtomic(join(dir, TEST_PKI_FILES.issuing), pki.issuing.pem, 0o644);
  return pki;
}
