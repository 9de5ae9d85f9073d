import { runDoctor, type CheckStatus, type DoctorOptions } from '../../doctor/doctor.js';
import { defaultTrustEnvironment } from '../../certs/trust.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand } from '../io.js';

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };

/** Builds the doctor command; tests pass options (fake registry, ports, paths). */
export function createDoctorCommand(defaults: DoctorOptions = {}): CliCommand {
  return {
    name: 'doctor',
    summary: 'Check pcscd, readers, listener ports, certificate trust, hosts entry and browser policy, with a fix for each problem',
    usage: 'cardbridge doctor [--json] [--state-dir DIR] [--system-store DIR|none] [--home DIR]...',
    async run(args, io) {
      const { values } = parseCommandArgs(args, { json: { type: 'boolean' }, 'state-dir': { type: 'string' }, home: { type: 'string', multiple: true }, 'system-store': { type: 'string' } });
      const options: DoctorOptions = { ...defaults };
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
