import { runDoctor, type Check, type CheckStatus, type DoctorOptions } from '../../doctor/doctor.js';
import { runCardChecks } from '../../doctor/card-check.js';
import { defaultTrustEnvironment } from '../../certs/trust.js';
import { SYSTEM_CONFIG_FILE, configFile, loadConfig } from '../../daemon/config.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';
import { openRegistry } from '../reader-source.js';

/** The health check is a diagnostic: doctor does not wait as long as a login would. */
const SAM_CHECK_TIMEOUT_MS = 5000;

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };

function printChecks(io: CliIO, checks: Check[]): void {
  for (const c of checks) {
    io.out(`${MARK[c.status]}  ${c.title}: ${c.detail}`);
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) io.out(`      → ${c.fix}`);
  }
}

/** `doctor --card`: read-only card checks (src/doctor/card-check.ts); never sends a PIN. */
async function cardDoctor(io: CliIO, json: boolean, mock: boolean, reader: string | undefined): Promise<number> {
  const registry = await openRegistry(mock);
  try {
    const checks = await runCardChecks(registry, reader === undefined ? {} : { reader });
    const ok = !checks.some((c) => c.status === 'fail');
    if (json) {
      io.out(JSON.stringify({ ok, checks }, null, 2));
    } else {
      printChecks(io, checks);
      io.out('');
      io.out('No PIN was sent. To report a card that misbehaves, record one operation: "cardbridge trace <operation> --out trace.json" (see docs/field-testing.md).');
    }
    return ok ? EXIT.ok : EXIT.failed;
  } finally {
    await registry.stop();
  }
}

/**
 * Builds the doctor command; tests pass options (fake registry, ports, paths). With
 * `samFromConfig` (the real command) the configured NHI SAM is checked unless `--sam none`.
 */
export function createDoctorCommand(defaults: DoctorOptions = {}, samFromConfig = false): CliCommand {
  return {
    name: 'doctor',
    usage: 'cardbridge doctor [--json] [--config FILE] [--sam HOST:PORT|none] [--state-dir DIR] [--system-store DIR|none] [--home DIR]... | cardbridge doctor --card [--reader NAME] [--json] [--mock]',
    help: [
      '',
      'Options:',
      '  --json                  print the report as JSON ({ok, configFile, stateDir, checks: [{id, title, status, detail, fix}]})',
      `  --config FILE           the configuration to check (default ${SYSTEM_CONFIG_FILE} if it exists); its listeners, state directory and NHI SAM are used`,
      "  --state-dir DIR         the state directory to check (default: the configuration's, else $CARDBRIDGE_STATE_DIR, /var/lib/cardbridge as root)",
      '  --system-store DIR|none the CA store to check (default /usr/local/share/ca-certificates; none: skip it)',
      '  --home DIR              a home whose NSS databases (~/.pki/nssdb, Firefox profiles) to check; repeatable (default $HOME and $SUDO_USER\'s)',
      '  --sam HOST:PORT|none    the NHI cloud SAM to reach with the plain health check (default: the configuration\'s; none: skip it)',
      '  --card                  instead: read-only checks of the card in a reader (never sends a PIN, prints no holder data)',
      '  --reader NAME           with --card: the reader to check (default: every reader)',
      '  --mock                  with --card: the virtual readers and cards instead of pcscd',
      '',
      'Exit status: 0 when no check failed, 1 otherwise. Run it with sudo to name processes of other users holding a port.',
      '',
      'Example: sudo cardbridge doctor --json',
      'Example: cardbridge doctor --card',
    ],
    async run(args, io) {
      const { values } = parseCommandArgs(args, {
        json: { type: 'boolean' },
        config: { type: 'string' },
        sam: { type: 'string' },
        'state-dir': { type: 'string' },
        home: { type: 'string', multiple: true },
        'system-store': { type: 'string' },
        card: { type: 'boolean' },
        reader: { type: 'string' },
        mock: { type: 'boolean' },
      });
      if (values.card) return cardDoctor(io, values.json ?? false, values.mock ?? false, values.reader);
      if (values.reader !== undefined || values.mock) throw new UsageError('doctor: --reader and --mock go with --card');
      const options: DoctorOptions = { ...defaults, configFile: configFile(values.config ?? defaults.configFile) };
      if (values.sam === 'none') delete options.sam;
      else if (values.sam !== undefined) options.sam = { ...samTarget(values.sam), connectTimeoutMs: SAM_CHECK_TIMEOUT_MS, stepTimeoutMs: SAM_CHECK_TIMEOUT_MS };
      else if (samFromConfig && !options.sam) {
        const { host, port, connectTimeoutMs, stepTimeoutMs } = loadConfig(options.configFile).nhiSam;
        options.sam = { host, port, connectTimeoutMs: Math.min(connectTimeoutMs, SAM_CHECK_TIMEOUT_MS), stepTimeoutMs: Math.min(stepTimeoutMs, SAM_CHECK_TIMEOUT_MS) };
      }
      if (values['state-dir']) options.stateDir = values['state-dir'];
      const store = values['system-store'];
      if (values.home || store !== undefined) {
        options.trust = defaultTrustEnvironment(process.env, {
          ...defaults.trust,
          ...(values.home ? { homes: values.home } : {}),
          ...(store === undefined ? {} : { systemStoreDir: store === 'none' ? null : store }),
        });
      }
      const report = await runDoctor(options);
      if (values.json) {
        io.out(JSON.stringify(report, null, 2));
      } else {
        io.out(`Configuration:   ${report.configFile ?? `none (${SYSTEM_CONFIG_FILE} does not exist): built-in defaults`}`);
        io.out(`State directory: ${report.stateDir}`);
        io.out('');
        printChecks(io, report.checks);
        const failed = report.checks.filter((c) => c.status === 'fail').length;
        io.out('');
        io.out(failed === 0 ? 'Everything cardbridge needs looks fine.' : `${failed} check(s) failed; the → lines say what to do.`);
      }
      return report.ok ? EXIT.ok : EXIT.failed;
    },
  };
}

function samTarget(value: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new UsageError(`--sam wants HOST:PORT or "none", not "${value}"`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export const doctorCommand = createDoctorCommand({}, true);
