import { type BrowserEnvironment, type BrowserId, BROWSERS, BROWSERS_ROOT_ENV, DEFAULT_FIREFOX_CA, allowBrowsers, browserStatus, removeBrowsers } from '../../browsers/policies.js';
import { defaultStateDir } from '../../config/paths.js';
import { SitesStore } from '../../config/sites-store.js';
import { configFile, loadConfig } from '../../daemon/config.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, UsageError, type CliCommand } from '../io.js';
import { formatTable } from '../table.js';

/** The environment the browsers command and doctor share: root from --root or $CARDBRIDGE_BROWSERS_ROOT. */
export function browserEnvironment(options: { root?: string | undefined; stateDir?: string | undefined; config?: string | undefined } = {}): BrowserEnvironment {
  const config = loadConfig(configFile(options.config));
  const stateDir = options.stateDir ?? config.stateDir ?? defaultStateDir();
  const sites = SitesStore.inStateDir(stateDir, config.allowedOrigins);
  return {
    root: options.root ?? process.env[BROWSERS_ROOT_ENV] ?? '',
    stateDir,
    // sites granted HiPKI alone (/addDomain) load p11Image.bmp from 61161 too
    origins: [...sites.allowedOrigins(), ...Object.keys(sites.grants())],
    caPath: DEFAULT_FIREFOX_CA,
  };
}

const IDS = BROWSERS.map((b) => b.id);

export const browsersCommand: CliCommand = {
  name: 'browsers',
  usage: `cardbridge browsers status|allow|remove [--browser ${IDS.join('|')}]... [--json] [--root DIR] [--state-dir DIR] [--config FILE]`,
  help: [
    '',
    'status shows each installed browser\'s policy state; allow writes them (root); remove takes away exactly what allow wrote.',
    '',
    'Options:',
    `  --browser ID     only this browser (${IDS.join(', ')}); repeatable; default: every installed one`,
    '  --json           status as JSON',
    '  --root DIR       put every policy path under DIR (tests; also $CARDBRIDGE_BROWSERS_ROOT)',
    '  --state-dir DIR  where the allowed sites and the record of what allow wrote live (default: the configuration\'s)',
    '  --config FILE    the configuration (default /etc/cardbridge/config.json if it exists)',
    '',
    'Example: sudo cardbridge browsers allow && cardbridge browsers status',
  ],
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      args,
      { json: { type: 'boolean' }, root: { type: 'string' }, 'state-dir': { type: 'string' }, config: { type: 'string' }, browser: { type: 'string', multiple: true } },
      true,
    );
    const [action = 'status', ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const only = values.browser as BrowserId[] | undefined;
    for (const id of only ?? []) if (!IDS.includes(id)) throw new UsageError(`unknown browser "${id}" (use ${IDS.join(', ')})`);
    const env = browserEnvironment({ root: values.root, stateDir: values['state-dir'], config: values.config });
    switch (action) {
      case 'status': {
        const browsers = await browserStatus(env);
        const ok = browsers.every((b) => !b.installed || b.state === 'ok');
        if (values.json) io.out(JSON.stringify({ ok, browsers }, null, 2));
        else for (const line of formatTable(['BROWSER', 'POLICY', 'DETAIL'], browsers.map((b) => [b.name, b.state, b.detail]))) io.out(line);
        if (!values.json && !ok) io.out('Run "sudo cardbridge browsers allow" to write the missing policies.');
        return ok ? EXIT.ok : EXIT.failed;
      }
      case 'allow':
      case 'remove': {
        const changes = action === 'allow' ? await allowBrowsers(env, only) : await removeBrowsers(env, only);
        if (values.json) io.out(JSON.stringify({ changes }, null, 2));
        else if (changes.length === 0) io.out('No supported browser is installed (Chrome, Chromium, Edge, Firefox): nothing written.');
        else for (const c of changes) io.out(`${c.name}: ${c.action} ${c.file}`);
        if (action === 'allow' && changes.length > 0 && !values.json) io.out('Restart the browser to apply.');
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown action "${action}" (use status, allow or remove)`);
    }
  },
};
