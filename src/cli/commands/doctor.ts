import { runDoctor, type CheckStatus, type DoctorOptions } from '../../doctor/doctor.js';
import { defaultTrustEnvironment } from '../../certs/trust.js';
import { SYSTEM_CONFIG_FILE, configFile } from '../../daemon/config.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand } from '../io.js';

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };

/** Builds the doctor command; tests pass options (fake registry, ports, paths). */
export function createDoctorCommand(defaults: DoctorOptions = {}): CliCommand {
  return {
    name: 'doctor',
    summary: 'Check pcscd, readers, listener ports, certificate trust, hosts entry and browser policy, with a fix for each problem',
    usage: 'cardbridge doctor [--json] [--config FILE] [--state-dir DIR] [--system-store DIR|none] [--home DIR]...',
    help: [
      '',
      'Options:',
      '  --json                  print the report as JSON ({ok, configFile, stateDir, checks: [{id, title, status, detail, fix}]})',
      `  --config FILE           the configuration to check (default ${SYSTEM_CONFIG_FILE} if it exists); its listeners and state directory are used`,
      "  --state-dir DIR         the state directory to check (default: the configuration's, else $CARDBRIDGE_STATE_DIR, /var/lib/cardbridge as root)",
      '  --system-store DIR|none the CA store to check (default /usr/local/share/ca-certificates; none: skip it)',
      '  --home DIR              a home whose NSS databases (~/.pki/nssdb, Firefox profiles) to check; repeatable (default $HOME and $SUDO_USER\'s)',
      '',
      'Exit status: 0 when no check failed, 1 otherwise. Run it with sudo to name processes of other users holding a port.',
      '',
      'Example: sudo cardbridge doctor --json',
    ],
    async run(args, io) {
      const { values } = parseCommandArgs(args, { json: { type: 'boolean' }, config: { type: 'string' }, 'state-dir': { type: 'string' }, home: { type: 'string', multiple: true }, 'system-store': { type: 'string' } });
      const options: DoctorOptions = { ...defaults, configFile: configFile(values.config ?? defaults.configFile) };
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
        for (const c of report.checks) {
          io.out(`${MARK[c.status]}  ${c.title}: ${c.detail}`);
          if (c.fix && (c.status === 'fail' || c.status === 'warn')) io.out(`      → ${c.fix}`);
        }
        const failed = report.checks.filter((c) => c.status === 'fail').length;
        io.out('');
        io.out(failed === 0 ? 'Everything cardbridge needs looks fine.' : `${failed} check(s) failed; the → lines say what to do.`);
      }
      return report.ok ? EXIT.ok : EXIT.failed;
    },
  };
}

export const doctorCommand = createDoctorCommand();
