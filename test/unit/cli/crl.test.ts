import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { createTestCrl } from '../../../src/emulator/moica/test-crl.js';
import { type MoicaTestPki, getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { CrlStore, SHIPPED_CERTS_DIR, verifyCertificate } from '../../../src/verify/index.js';
import { captureIO } from '../../helpers/capture-io.js';

/** `cardbridge crl fetch|status` against a loopback HTTP server with generated CRLs: never the network. */

const HOUR = 3600_000;
let pki: MoicaTestPki;
let server: Server;
let base: string;
let dir: string;
let caFiles: string[];
const served = new Map<string, Buffer>();

beforeAll(async () => {
  pki = await getTestPki();
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end('not here');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const now = Date.now();
  const times = { thisUpdate: new Date(now - HOUR), nextUpdate: new Date(now + 24 * HOUR) };
  served.set('/moica.crl', (await createTestCrl({ issuer: pki.issuing, ...times, revoked: [{ certificate: pki.encrypt }] })).der);
  served.set('/root.crl', Buffer.from((await createTestCrl({ issuer: pki.root, ...times })).pem));
  served.set('/forged.crl', (await createTestCrl({ issuer: pki.issuing, ...times, signingKey: pki.sign.privateKey })).der);
  served.set('/garbage.crl', Buffer.from('<html>maintenance</html>'));
  served.set('/stale.crl', (await createTestCrl({ issuer: pki.issuing, thisUpdate: new Date(now - 48 * HOUR), nextUpdate: new Date(now - HOUR) })).der);
}, 30_000);

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardbridge-crl-'));
  caFiles = [join(dir, '..', `${dir.split('/').pop()}-root.pem`), join(dir, '..', `${dir.split('/').pop()}-issuing.pem`)];
  writeFileSync(caFiles[0]!, pki.root.pem);
  writeFileSync(caFiles[1]!, pki.issuing.pem);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const f of caFiles) rmSync(f, { force: true });
});

async function run(...args: string[]) {
  const io = captureIO();
  const code = await main(['crl', ...args], io);
  return { code, ...io };
}
const cas = () => caFiles.flatMap((f) => ['--ca', f]);

describe('cardbridge crl fetch', () => {
  it('downloads CRLs, checks each one\'s signature against a known CA and stores them where the verifier reads them', async () => {
    const result = await run('fetch', '--dir', dir, '--url', `${base}/moica.crl`, '--url', `${base}/root.crl`, ...cas());
    expect(result.stderr).toEqual([]);
    expect(result.code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.crl'))).toHaveLength(2);
    // The verifier uses the stored files: the revoked encryption certificate is refused … 
    const options = { trustAnchors: pki.root.pem, intermediates: pki.issuing.pem, revocation: { crls: CrlStore.fromDirectory(dir) } };
    await expect(verifyCertificate(pki.encrypt.der, { ...options, keyUsage: 'digitalSignatureOrNonRepudiation' })).rejects.toMatchObject({
      code: 'CertificateRevoked',
    });
    // … and the signing certificate passes.
    await expect(verifyCertificate(pki.sign.der, options)).resolves.toBeDefined();
  });

  it('refuses a CRL whose signature no known CA makes, a non-CRL answer and an HTTP error, keeping the old file', async () => {
    expect((await run('fetch', '--dir', dir, '--url', `${base}/moica.crl`, ...cas())).code).toBe(0);
    const [stored] = readdirSync(dir);
    const before = readFileSync(join(dir, stored!));
    for (const [path, message] of [
      ['/forged.crl', /signature/i],
      ['/garbage.crl', /not a DER X\.509 CRL/],
      ['/missing.crl', /HTTP 404/],
    ] as const) {
      const result = await run('fetch', '--dir', dir, '--url', `${base}${path}`, ...cas());
      expect(result.code).toBe(1);
      expect(result.stderr.join('\n')).toMatch(message);
    }
    expect(readdirSync(dir)).toEqual([stored]);
    expect(readFileSync(join(dir, stored!))).toEqual(before);
  });

  it('refuses to replace a CRL with an older one (a replayed download)', async () => {
    expect((await run('fetch', '--dir', dir, '--url', `${base}/moica.crl`, ...cas())).code).toBe(0);
    const result = await run('fetch', '--dir', dir, '--url', `${base}/stale.crl`, ...cas());
    expect(result.code).toBe(1);
    expect(result.stderr.join('\n')).toMatch(/older than the stored one/);
  });

  it('without --url takes the shipped CA certificates\' distribution points and the complete CRL of each known MOICA generation (shown with --dry-run, no download)', async () => {
    const result = await run('fetch', '--dir', dir, '--dry-run');
    expect(result.code).toBe(0);
    expect(result.stdout).toEqual([
      'skipping https://crl-moica.moi.gov.tw/crl/MOICA-G3-complete.crl: give the moica-g3 certificate with --ca to fetch it (see certs/README.md)',
      'would fetch http://grca.nat.gov.tw/repository/CRL2/CA.crl',
      'would fetch https://moica.nat.gov.tw/repository/MOICA/CRL2/complete.crl',
    ]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--from-cert takes the distribution points of the given certificate instead', async () => {
    const result = await run('fetch', '--dir', dir, '--dry-run', '--from-cert', join(SHIPPED_CERTS_DIR, 'moica-g2.pem'));
    expect(result).toMatchObject({ code: 0, stdout: ['would fetch http://grca.nat.gov.tw/repository/CRL2/CA.crl'] });
  });

  it('needs --dir', async () => {
    expect((await run('fetch', '--url', `${base}/moica.crl`)).code).toBe(2);
  });
});

describe('cardbridge crl status', () => {
  it('lists each stored CRL with its issuer, dates and entries, and exits 0 when all are current', async () => {
    await run('fetch', '--dir', dir, '--url', `${base}/moica.crl`, '--url', `${base}/root.crl`, ...cas());
    const result = await run('status', '--dir', dir, ...cas(), '--json');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout.join('\n'));
    expect(report.crls).toHaveLength(2);
    const moica = report.crls.find((c: { entries: number }) => c.entries === 1);
    expect(moica).toMatchObject({ state: 'current', signature: 'ok' });
    expect(moica.issuer).toContain('內政部憑證管理中心');
    expect(Date.parse(moica.nextUpdate)).toBeGreaterThan(Date.now());
  });

  it('exits 1 and says so for a stale CRL, an empty directory, or a CRL no known CA signed', async () => {
    writeFileSync(join(dir, 'moica.crl'), served.get('/stale.crl')!);
    let result = await run('status', '--dir', dir, ...cas());
    expect(result.code).toBe(1);
    expect(result.stdout.join('\n')).toMatch(/stale/);
    rmSync(join(dir, 'moica.crl'));
    result = await run('status', '--dir', dir, ...cas());
    expect(result.code).toBe(1);
    expect(result.stderr.join('\n')).toMatch(/No CRL files/);
    writeFileSync(join(dir, 'moica.crl'), served.get('/moica.crl')!);
    result = await run('status', '--dir', dir); // without the test CAs: the issuer is unknown
    expect(result.code).toBe(1);
    expect(result.stdout.join('\n')).toMatch(/unknown issuer/);
  });
});
