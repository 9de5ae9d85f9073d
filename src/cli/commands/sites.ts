import { defaultStateDir } from '../../config/paths.js';
import { SitesStore } from '../../config/sites-store.js';
import { configFile, loadConfig } from '../../daemon/config.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, UsageError, type CliCommand } from '../io.js';
import { formatTable } from '../table.js';
import { resyncBrowsers } from '../../browsers/policies.js';
import { browserEnvironment } from './browsers.js';
import type { CliIO } from '../io.js';

/**
 * The browsers' Local Network Access policies list the allowed sites: rewrite the ones that
 * exist. Without the right to write them (not root) say what to run instead.
 */
async function resyncPolicies(io: CliIO, stateDir: string, config: string | undefined): Promise<void> {
  try {
    for (const c of await resyncBrowsers(browserEnvironment({ stateDir, config }))) if (c.action === 'written') io.out(`${c.name}: updated ${c.file}`);
  } catch (e) {
    io.err(`cardbridge: the browser policies were not updated (${(e as Error).message}); run "sudo cardbridge browsers allow".`);
  }
}

export const sitesCommand: CliCommand = {
  name: 'sites',
  usage: 'cardbridge sites list|allow PATTERN|revoke ORIGIN [--json] [--config FILE] [--state-dir DIR]',
  help: [
    '',
    'Actions: list (the default) shows the allow-list and remembered consents; allow adds an origin pattern',
    "(https://host, https://*.domain, optional :port); revoke removes a pattern and that origin's consents.",
    'The running daemon sees a change at once.',
    '',
    'Options:',
    '  --json           print the list as JSON',
    '  --config FILE    the configuration whose stateDir and allowedOrigins apply (default /etc/cardbridge/config.json if it exists)',
    "  --state-dir DIR  where sites.json lives (default: the configuration's, else $CARDBRIDGE_STATE_DIR, /var/lib/cardbridge as root)",
    '',
    'Example: sudo cardbridge sites allow https://*.example.gov.tw',
  ],
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' }, config: { type: 'string' }, 'state-dir': { type: 'string' } }, true);
    const config = loadConfig(configFile(values.config));
    const stateDir = values['state-dir'] ?? config.stateDir ?? defaultStateDir();
    const store = SitesStore.inStateDir(stateDir, config.allowedOrigins, [], { consentDays: config.consentDays });
    const [action, target, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    switch (action) {
      case undefined:
      case 'list': {
        const allowed = store.allowedOrigins();
        const consents = store.consents();
        const grants = store.grants();
        if (values.json) {
          io.out(JSON.stringify({ file: store.path, allowedOrigins: allowed, grants, consents }, null, 2));
          return EXIT.ok;
        }
        io.out(`Allowed sites, every capability (${store.path}):`);
        for (const p of allowed) io.out(`  ${p}`);
        if (allowed.length === 0) io.out('  (none)');
        if (Object.keys(grants).length > 0) {
          io.out('');
          io.out('Sites with one capability only (HiPKI: granted in cardbridge’s /addDomain window):');
          for (const [origin, capabilities] of Object.entries(grants)) io.out(`  ${origin}  ${capabilities.join(', ')}`);
        }
        const rows = Object.entries(consents).flatMap(([origin, scopes]) => Object.entries(scopes).map(([scope, at]) => [origin, scope, at ?? '']));
        io.out('');
        if (rows.length === 0) io.out('No remembered consents.');
        else for (const line of formatTable(['SITE', 'MAY', 'SINCE'], rows)) io.out(line);
        return EXIT.ok;
      }
      case 'allow': {
        if (!target) throw new UsageError('allow needs a site, e.g. cardbridge sites allow https://*.example.gov.tw');
        const added = await store.allow(target);
        io.out(added ? `Allowed ${target}.` : `${target} was already allowed.`);
        if (added) await resyncPolicies(io, stateDir, values.config);
        return EXIT.ok;
      }
      case 'revoke': {
        if (!target) throw new UsageError('revoke needs a site, e.g. cardbridge sites revoke https://www.example.gov.tw');
        const removed = await store.revoke(target);
        if (removed) await resyncPolicies(io, stateDir, values.config);
        io.out(removed ? `Revoked ${target}: it is no longer allowed, and its grants and consents are forgotten.` : `${target} was neither allowed nor remembered.`);
        return removed ? EXIT.ok : EXIT.failed;
      }
      default:
        throw new UsageError(`unknown action "${action}" (use list, allow or revoke)`);
    }
  },
};
