import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardBridgeError } from '../../../src/errors.js';
import { ensureServerCertificate, trustCa, type TrustEnvironment } from '../../../src/certs/index.js';
import { createDoctorCommand } from '../../../src/cli/commands/doctor.js';
import { type DoctorOptions, type DoctorRegistry, HOSTS_LINE, runDoctor, samCheck } from '../../../src/doctor/doctor.js';
import { EmulatedSam } from '../../../src/emulator/nhi/emulated-sam.js';
import { parseProcNetTcp, portHolders } from '../../../src/doctor/ports.js';
import { PCSC_INSTALL_HINT } from '../../../src/readers/pcsc-registry.js';
import type { ReaderState } from '../../../src/readers/types.js';
import { captureIO } from '../../helpers/capture-io.js';
import { itWithTools } from '../../helpers/tools.js';
import { DEFAULT_FIREFOX_CA, allowBrowsers } from '../../../src/browsers/policies.js';

function fakeRegistry(available: boolean, readers: ReaderState[] = [], serviceError?: string): () => DoctorRegistry {
  return () => ({
    start: async () => undefined,
    stop: async () => undefined,
    serviceAvailable: available,
    serviceError,
    readers: () => readers,
  });
}

const NHI_READER: ReaderState = { name: 'Reader 0', card: { atr: '3BFF', type: { kind: 'nhi' }, label: 'health insurance card (健保卡)' } };

let dir: string;
let servers: Server[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardbridge-doctor-'));
});
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

function listen(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    servers.push(server);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function trustEnv(overrides: Partial<TrustEnvironment> = {}): TrustEnvironment {
  return { systemStoreDir: join(dir, 'store'), updateCommand: null, systemBundle: null, homes: [join(dir, 'home')], certutil: 'certutil', ...overrides };
}

/** Everything healthy: a reader with a card, free ports, a trusted certificate, the hosts line. */
async function healthy(): Promise<DoctorOptions> {
  const stateDir = join(dir, 'state');
  const { ca } = await ensureServerCertificate(stateDir);
  const trust = trustEnv();
  await trustCa(ca, trust);
  writeFileSync(join(dir, 'hosts'), `127.0.0.1 localhost\n${HOSTS_LINE}\n`);
  return {
    registry: fakeRegistry(true, [NHI_READER]),
    listeners: [{ name: 'test', port: await freePort(), scheme: 'https' }],
    stateDir,
    trust,
    hostsFile: join(dir, 'hosts'),
    browsers: { root: join(dir, 'root'), stateDir, origins: ['https://*.gov.tw'], caPath: DEFAULT_FIREFOX_CA },
  };
}

async function freePort(): Promise<number> {
  const port = await listen();
  await new Promise((r) => servers.pop()!.close(r));
  return port;
}

function check(report: Awaited<ReturnType<typeof runDoctor>>, id: string) {
  const found = report.checks.find((c) => c.id === id || c.id.startsWith(id));
  if (!found) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

describe('cardbridge doctor', () => {
  itWithTools(['certutil'])('passes and exits 0 when everything is in place', async () => {
    const options = await healthy();
    const report = await runDoctor(options);
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(report.ok).toBe(true);
    expect(check(report, 'reader:Reader 0').detail).toBe('health insurance card (健保卡) inserted');
    expect(check(report, 'hosts').status).toBe('ok');
    expect(check(report, 'allow-list').detail).toContain('the default allow-list (https://*.gov.tw) applies');
    expect(check(report, 'browsers')).toMatchObject({ status: 'info', detail: expect.stringContaining('no supported browser') });
    const io = captureIO();
    expect(await createDoctorCommand(options).run([], io)).toBe(0);
    expect(io.stdout.at(-1)).toBe('Everything cardbridge needs looks fine.');
  });

  itWithTools(['certutil'])('reports each installed browser’s policy, warning with the command that writes it', async () => {
    const options = await healthy();
    mkdirSync(join(dir, 'root/usr/bin'), { recursive: true });
    writeFileSync(join(dir, 'root/usr/bin/chromium'), '');
    const before = check(await runDoctor(options), 'browser:chromium');
    expect(before).toMatchObject({ title: 'Chromium: Local Network Access policy', status: 'warn', fix: expect.stringContaining('sudo cardbridge browsers allow') });
    await allowBrowsers(options.browsers!);
    const after = await runDoctor(options);
    expect(check(after, 'browser:chromium')).toMatchObject({ status: 'ok', detail: expect.stringContaining('https://[*.]gov.tw') });
    expect(after.checks.some((c) => c.id === 'browser:chrome')).toBe(false);
  });

  it('reports pcscd down with the command that starts it', async () => {
    const report = await runDoctor({ ...(await basics()), registry: fakeRegistry(false, [], 'The smart-card service (pcscd) is not running') });
    const pcsc = check(report, 'pcsc');
    expect(pcsc.status).toBe('fail');
    expect(pcsc.detail).toContain('pcscd is not reachable: The smart-card service (pcscd) is not running');
    expect(pcsc.fix).toContain('systemctl enable --now pcscd.socket');
    expect(report.ok).toBe(false);
  });

  it('says what to install when the PC/SC addon is missing', async () => {
    const report = await runDoctor({
      ...(await basics()),
      registry: () => {
        throw new CardBridgeError('Unavailable', 'no addon', { hint: PCSC_INSTALL_HINT });
      },
    });
    expect(check(report, 'pcsc')).toMatchObject({ status: 'fail', fix: PCSC_INSTALL_HINT });
  });

  it('asks for a reader when pcscd sees none', async () => {
    const report = await runDoctor({ ...(await basics()), registry: fakeRegistry(true, []) });
    expect(check(report, 'readers')).toMatchObject({ status: 'fail' });
    expect(check(report, 'readers').fix).toContain('libccid');
  });

  it('names the process holding a listener port, and exits 1', async () => {
    const port = await listen();
    const options = { ...(await basics()), listeners: [{ name: 'hipki', port, scheme: 'http' as const, usualSuspect: 'the HiPKI Local Server' }] };
    const report = await runDoctor(options);
    const held = check(report, 'port:hipki');
    expect(held.status).toBe('fail');
    expect(held.detail).toContain(`held by another program: node (pid ${process.pid}`);
    expect(held.fix).toContain('the HiPKI Local Server');
    const io = captureIO();
    expect(await createDoctorCommand(options).run([], io)).toBe(1);
    expect(io.stdout.join('\n')).toMatch(/FAIL {2}Listener hipki .*held by another program: node \(pid \d+/);
  });

  it('recognises its own daemon on a port', async () => {
    const port = await listen();
    const report = await runDoctor({ ...(await basics()), listeners: [{ name: 'native', port, scheme: 'https' }], isCardbridge: (p) => p.pid === process.pid });
    expect(check(report, 'port:native')).toMatchObject({ status: 'ok', detail: `cardbridge is listening (pid ${process.pid})` });
  });

  itWithTools(['certutil'])('reports a CA that an existing NSS database does not trust', async () => {
    const options = await basics();
    const db = join(dir, 'home', '.pki', 'nssdb');
    mkdirSync(db, { recursive: true });
    execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
    await ensureServerCertificate(options.stateDir!);
    const report = await runDoctor(options);
    expect(check(report, 'certificate').status).toBe('ok');
    const nss = check(report, `trust:nss:${db}`);
    expect(nss).toMatchObject({ status: 'fail', fix: 'Run "sudo cardbridge certs trust".' });
    expect(nss.detail).toContain('not trusted in NSS database');
    expect(check(report, 'trust:system').status).toBe('fail');
  });

  it('reports missing certificates and a missing hosts entry with their fixes', async () => {
    const options = await basics();
    writeFileSync(options.hostsFile!, '127.0.0.1 localhost\n# 127.0.0.1 iccert.nhi.gov.tw\n');
    const report = await runDoctor(options);
    expect(check(report, 'certificate')).toMatchObject({ status: 'fail' });
    expect(check(report, 'certificate').fix).toContain('cardbridge certs init');
    expect(check(report, 'hosts')).toMatchObject({ status: 'fail' });
    expect(check(report, 'hosts').fix).toContain(HOSTS_LINE);
    writeFileSync(options.hostsFile!, '10.0.0.1 iccert.nhi.gov.tw\n');
    expect(check(await runDoctor(options), 'hosts').detail).toContain('sends iccert.nhi.gov.tw to 10.0.0.1');
  });

  it('reads the persisted allow-list from the state directory', async () => {
    const options = await basics();
    mkdirSync(options.stateDir!, { recursive: true });
    writeFileSync(join(options.stateDir!, 'sites.json'), JSON.stringify({ allowedOrigins: ['https://*.gov.tw', 'http://localhost:8080'], consents: {} }));
    expect(check(await runDoctor(options), 'allow-list')).toMatchObject({ status: 'warn', fix: expect.stringContaining('http://localhost:8080') });
    writeFileSync(join(options.stateDir!, 'sites.json'), '{nope');
    expect(check(await runDoctor(options), 'allow-list')).toMatchObject({ status: 'fail' });
  });

  it('prints JSON with --json', async () => {
    const io = captureIO();
    const code = await createDoctorCommand({ ...(await basics()), registry: fakeRegistry(false) }).run(['--json'], io);
    expect(code).toBe(1);
    const report = JSON.parse(io.stdout.join('\n')) as { ok: boolean; checks: { id: string; status: string }[] };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.id === 'pcsc')?.status).toBe('fail');
  });

  it('says which configuration and state directory it used, as text and as --json', async () => {
    const options = await basics();
    const file = join(dir, 'config.json');
    writeFileSync(file, '{"logLevel":"debug"}\n');
    const text = captureIO();
    await createDoctorCommand(options).run(['--config', file], text);
    expect(text.stdout.slice(0, 2)).toEqual([`Configuration:   ${file}`, `State directory: ${options.stateDir}`]);
    const json = captureIO();
    await createDoctorCommand(options).run(['--config', file, '--json'], json);
    expect(JSON.parse(json.stdout.join('\n'))).toMatchObject({ configFile: file, stateDir: options.stateDir, checks: expect.arrayContaining([expect.objectContaining({ id: 'config', status: 'ok' })]) });
  });

  it('uses the configuration\'s state directory and listener ports', async () => {
    const { listeners: _unused, stateDir: _default, ...options } = await basics();
    const port = await listen();
    const file = join(dir, 'config.json');
    const stateDir = join(dir, 'configured-state');
    const off = Object.fromEntries(['native', 'nhi-ws', 'nhi-http', 'nhi-https'].map((n) => [n, { enabled: false }]));
    writeFileSync(file, JSON.stringify({ stateDir, listeners: { ...off, hipki: { port } } }));
    const report = await runDoctor({ ...options, configFile: file });
    expect(report.stateDir).toBe(stateDir);
    expect(report.checks.filter((c) => c.id.startsWith('port:')).map((c) => [c.id, c.title, c.status])).toEqual([['port:hipki', `Listener hipki (http://127.0.0.1:${port})`, 'fail']]);
  });

  it('fails on a bad configuration file with the key and the fix, and checks the rest with defaults', async () => {
    const file = join(dir, 'config.json');
    writeFileSync(file, '{"listeners":{"hipki":{"port":0}}}');
    const report = await runDoctor({ ...(await basics()), configFile: file });
    expect(check(report, 'config')).toMatchObject({ status: 'fail', detail: `${file}: listeners.hipki.port must be at least 1 (got 0)`, fix: expect.stringContaining('docs/configuration.md') });
    expect(check(report, 'hosts').status).toBe('ok');
    expect(report.ok).toBe(false);
  });

  it('says when no configuration file exists and the defaults apply', async () => {
    const report = await runDoctor({ ...(await basics()), configFile: undefined });
    expect(check(report, 'config')).toMatchObject({ status: 'info', detail: expect.stringContaining('built-in defaults') });
    expect(report.configFile).toBeNull();
  });

  async function basics(): Promise<DoctorOptions> {
    writeFileSync(join(dir, 'hosts'), `${HOSTS_LINE}\n`);
    return {
      registry: fakeRegistry(true, [NHI_READER]),
      listeners: [],
      stateDir: join(dir, 'state'),
      trust: trustEnv(),
      hostsFile: join(dir, 'hosts'),
      };
  }
});

describe('cardbridge doctor: NHI cloud SAM reachability (a diagnostic, never a login step)', () => {
  let sam: EmulatedSam;
  beforeAll(async () => {
    sam = await EmulatedSam.start();
  });
  afterAll(async () => {
    await sam.close();
  });
  afterEach(() => {
    sam.fault = undefined;
  });

  const quick = (port: number) => ({ host: '127.0.0.1', port, connectTimeoutMs: 1000, stepTimeoutMs: 500 });

  it('is not run without a SAM target (doctor must not reach the network in tests)', async () => {
    expect((await samlessReport()).checks.map((c) => c.id)).not.toContain('nhi-sam');
  });

  it('ok when the handshake and the plain 77<E> health check pass', async () => {
    const check = await samCheck(quick(sam.port));
    expect(check).toMatchObject({ id: 'nhi-sam', status: 'ok' });
    expect(check.title).toContain(`127.0.0.1:${sam.port}`);
  });

  it('warns, showing the answer, when the health check is answered otherwise', async () => {
    sam.fault = { step: 'health', kind: 'reject' };
    const check = await samCheck(quick(sam.port));
    expect(check).toMatchObject({ status: 'warn' });
    expect(check.detail).toContain('"04<rc=2>NG<E>"');
  });

  it('warns (never fails) with the network fix when the SAM cannot be reached', async () => {
    const closed = await freePort();
    const check = await samCheck(quick(closed));
    expect(check).toMatchObject({ status: 'warn' });
    expect(check.detail).toContain('not reachable');
    expect(check.fix).toContain(`raw TCP (not TLS) to 127.0.0.1:${closed}`);
  });

  it('the CLI runs it with --sam HOST:PORT and refuses a malformed target', async () => {
    const io = captureIO();
    await createDoctorCommand(await samless()).run(['--json', '--sam', `127.0.0.1:${sam.port}`], io);
    const report = JSON.parse(io.stdout.join('\n')) as { checks: Array<{ id: string; status: string }> };
    expect(report.checks.find((c) => c.id === 'nhi-sam')).toMatchObject({ status: 'ok' });
    await expect(createDoctorCommand(await samless()).run(['--sam', 'nohostport'], captureIO())).rejects.toThrow(/HOST:PORT/);
  });

  async function samless(): Promise<DoctorOptions> {
    writeFileSync(join(dir, 'hosts'), `${HOSTS_LINE}\n`);
    return { registry: fakeRegistry(true, [NHI_READER]), listeners: [], stateDir: join(dir, 'state'), trust: trustEnv(), hostsFile: join(dir, 'hosts') };
  }

  async function samlessReport() {
    return runDoctor(await samless());
  }
});

describe('/proc/net/tcp parsing', () => {
  it('reads listening IPv4 and IPv6 sockets', () => {
    const v4 = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:EF01 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:1E61 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 999 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    expect(parseProcNetTcp(v4, 4)).toEqual([{ address: '127.0.0.1', port: 0xef01, uid: 0, inode: 12345 }]);
    const v6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000001000000:1E61 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 777 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect(parseProcNetTcp(v6, 6)).toEqual([{ address: '::1', port: 7777, uid: 1000, inode: 777 }]);
  });

  it('finds this process holding a port it listens on', async () => {
    const port = await listen();
    const holder = portHolders(port);
    expect(holder.sockets).toHaveLength(1);
    expect(holder.processes.map((p) => p.pid)).toEqual([process.pid]);
  });
});
