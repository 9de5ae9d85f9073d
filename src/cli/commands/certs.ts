import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CardBridgeError } from '../../errors.js';
import {
  CERT_FILES,
  MACOS_TRUST_STEPS,
  RENEW_WITHIN_DAYS,
  type CertificateState,
  type StoreResult,
  type TrustEnvironment,
  WINDOWS_TRUST_STEPS,
  defaultStateDir,
  defaultTrustEnvironment,
  ensureServerCertificate,
  readCertificateState,
  trustCa,
  trustStatus,
  untrustCa,
  writeNewCertificates,
} from '../../certs/index.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';

const USAGE =
  'cardbridge certs init|trust|status|renew|untrust [--state-dir DIR] [--json] [--system-store DIR|none] [--home DIR]...';

const OPTIONS = {
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  'system-store': { type: 'string' },
  home: { type: 'string', multiple: true },
} as const;

interface Parsed {
  stateDir: string;
  json: boolean;
  environment: TrustEnvironment;
}

function parse(args: string[]): { action: string; options: Parsed } {
  const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
  const [action, ...extra] = positionals;
  if (!action) throw new UsageError('certs needs an action: init, trust, status, renew or untrust');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const store = values['system-store'];
  const environment = defaultTrustEnvironment(process.env, {
    ...(store === undefined ? {} : { systemStoreDir: store === 'none' ? null : store }),
    ...(values.home ? { homes: values.home } : {}),
  });
  return { action, options: { stateDir: values['state-dir'] ?? defaultStateDir(), json: values.json ?? false, environment } };
}

function printStores(io: CliIO, results: StoreResult[]): void {
  for (const r of results) {
    io.out(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.detail}`);
    if (!r.ok && r.hint) io.out(`       → ${r.hint}`);
  }
}

function printOtherPlatforms(io: CliIO, stateDir: string): void {
  const ca = join(stateDir, CERT_FILES.ca);
  io.out('');
  io.out('Other platforms (run there with this ca.pem):');
  io.out('  macOS:   ' + MACOS_TRUST_STEPS[0]!.replace('ca.pem', ca));
  io.out('  Windows: ' + WINDOWS_TRUST_STEPS[0]!.replace('ca.pem', ca));
}

function certificateJson(state: CertificateState) {
  const { pem: _pem, ...ca } = state.ca;
  return { stateDir: state.stateDir, ca, leaf: state.leaf, problems: state.problems };
}

async function loadCa(stateDir: string): Promise<CertificateState> {
  const state = await readCertificateState(stateDir);
  if (state.problems.length) {
    throw new CardBridgeError('Unavailable', `The certificates in ${stateDir} are not usable: ${state.problems.join('; ')}.`, {
      hint: 'Run "sudo cardbridge certs renew".',
    });
  }
  return state;
}

async function init(io: CliIO, { stateDir, json }: Parsed): Promise<number> {
  const result = await ensureServerCertificate(stateDir);
  if (json) {
    io.out(JSON.stringify({ stateDir, created: result.created, notAfter: result.notAfter.toISOString(), files: Object.values(CERT_FILES).map((f) => join(stateDir, f)) }, null, 2));
    return EXIT.ok;
  }
  io.out(result.created ? `Created a new local CA and server certificate in ${stateDir}.` : `The certificates in ${stateDir} already exist and are valid.`);
  io.out(`  ${join(stateDir, CERT_FILES.ca)}          the CA (trust this; its private key was discarded)`);
  io.out(`  ${join(stateDir, CERT_FILES.server)}      server certificate + CA`);
  io.out(`  ${join(stateDir, CERT_FILES.key)}  server key (mode 0600)`);
  io.out(`Valid until ${result.notAfter.toISOString().slice(0, 10)}. Next: "sudo cardbridge certs trust".`);
  return EXIT.ok;
}

async function trust(io: CliIO, { stateDir, json, environment }: Parsed, heading = true): Promise<number> {
  const state = await loadCa(stateDir);
  const results = await trustCa(state.ca.pem, environment);
  const ok = results.every((r) => r.ok);
  if (json) {
    io.out(JSON.stringify({ ok, stores: results, macos: MACOS_TRUST_STEPS, windows: WINDOWS_TRUST_STEPS }, null, 2));
    return ok ? EXIT.ok : EXIT.failed;
  }
  if (heading) io.out(`Trusting ${state.ca.subject}:`);
  if (results.length === 0) io.out('  (no store to update: no system store and no home directory given)');
  printStores(io, results);
  printOtherPlatforms(io, stateDir);
  if (!ok) io.err('cardbridge: the CA could not be trusted everywhere (see FAIL lines above).');
  return ok ? EXIT.ok : EXIT.failed;
}

async function untrust(io: CliIO, { json, environment }: Parsed): Promise<number> {
  const results = await untrustCa(environment);
  const ok = results.every((r) => r.ok);
  if (json) io.out(JSON.stringify({ ok, stores: results }, null, 2));
  else if (results.length === 0) io.out('No cardbridge CA was found in any store.');
  else printStores(io, results);
  return ok ? EXIT.ok : EXIT.failed;
}

async function status(io: CliIO, { stateDir, json, environment }: Parsed): Promise<number> {
  const state = await readCertificateState(stateDir);
  const stores = await trustStatus(state.ca.pem, environment);
  const ok = state.problems.length === 0 && stores.every((s) => s.ok);
  if (json) {
    io.out(JSON.stringify({ ok, certificate: certificateJson(state), stores }, null, 2));
    return ok ? EXIT.ok : EXIT.failed;
  }
  const { ca, leaf } = state;
  io.out(`State directory: ${stateDir}`);
  io.out(`CA:        ${ca.subject}`);
  io.out(`           SHA-256 ${ca.fingerprint256}`);
  io.out(`Server:    ${leaf.subject}`);
  io.out(`Names:     ${[...leaf.dnsNames, ...leaf.ipAddresses].join(', ')}`);
  io.out(`Expires:   ${leaf.notAfter.toISOString()} (${leaf.daysLeft} days left)`);
  if (leaf.daysLeft < RENEW_WITHIN_DAYS && leaf.daysLeft >= 0) io.out(`           → renew soon: "sudo cardbridge certs renew"`);
  for (const p of state.problems) io.out(`PROBLEM:   ${p} → "sudo cardbridge certs renew"`);
  io.out('Trusted in:');
  if (stores.length === 0) io.out('  (no store checked)');
  printStores(io, stores);
  return ok ? EXIT.ok : EXIT.failed;
}

async function renew(io: CliIO, options: Parsed): Promise<number> {
  const { stateDir, json, environment } = options;
  const hadCa = existsSync(join(stateDir, CERT_FILES.ca));
  // Issue first: if that fails, the old certificates and their trust stay as they were.
  const issued = await writeNewCertificates(stateDir);
  // The old CA's key is gone, so a new CA replaces it; take every old one out of the stores.
  const removed = hadCa ? await untrustCa(environment) : [];
  const results = await trustCa(issued.ca, environment);
  const ok = results.every((r) => r.ok);
  if (json) {
    io.out(JSON.stringify({ ok, stateDir, notAfter: issued.notAfter.toISOString(), removed, stores: results }, null, 2));
    return ok ? EXIT.ok : EXIT.failed;
  }
  io.out(`Issued a new local CA and server certificate in ${stateDir}, valid until ${issued.notAfter.toISOString().slice(0, 10)}.`);
  if (removed.length) {
    io.out('Removed the old CA:');
    printStores(io, removed);
  }
  io.out('Trusted the new CA:');
  printStores(io, results);
  io.out('Restart the service so it serves the new certificate: "sudo systemctl restart cardbridge".');
  printOtherPlatforms(io, stateDir);
  return ok ? EXIT.ok : EXIT.failed;
}

export const certsCommand: CliCommand = {
  name: 'certs',
  usage: USAGE,
  help: [
    '',
    'Actions: init creates the local CA and server certificate (kept while valid); trust puts the CA into the',
    'system store and NSS databases; status shows it and where it is trusted; renew replaces both and re-trusts;',
    'untrust removes every cardbridge CA from the stores.',
    '',
    'Options:',
    '  --state-dir DIR         where ca.pem, server.pem and server-key.pem live (default $CARDBRIDGE_STATE_DIR, /var/lib/cardbridge as root)',
    '  --json                  print status as JSON',
    '  --system-store DIR|none the system CA directory (default /usr/local/share/ca-certificates, then update-ca-certificates; none: skip it)',
    "  --home DIR              a home whose NSS databases to use; repeatable (default $HOME and $SUDO_USER's)",
    '',
    'Example: sudo cardbridge certs status',
  ],
  async run(args, io) {
    const { action, options } = parse(args);
    switch (action) {
      case 'init':
        return init(io, options);
      case 'trust':
        return trust(io, options);
      case 'untrust':
        return untrust(io, options);
      case 'status':
        return status(io, options);
      case 'renew':
        return renew(io, options);
      default:
        throw new UsageError(`unknown certs action "${action}" (init, trust, status, renew, untrust)`);
    }
  },
};
