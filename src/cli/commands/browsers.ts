import { type BrowserEnvironment, type BrowserId, BROWSERS, BROWSERS_ROOT_ENV, DEFAULT_FIREFOX_CA, allowBrowsers, browserStatus, removeBrowsers } from '../../browsers/policies.js';
import { defaultStateDir } from '../../config/paths.js';
import { SitesStore } from '../../config/sites-store.js';
import { loadConfig } from '../../daemon/config.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, UsageError, type CliCommand } from '../io.js';
import { formatTable } from '../table.js';

/** The environment the browsers command and doctor share: root from --root or $CARDBRIDGE_BROWSERS_ROOT. */
export function browserEnvironment(options: { root?: string | undefined; stateDir?: string | undefined; config?: string | undefined } = {}): BrowserEnvironment {
  const config = loadConfig(options.config);
  const stateDir = options.stateDir ?? config.stateDir ?? defaultStateDir();
  return {
    root: options.root ?? process.env[BROWSERS_ROOT_ENV] ?? '',
    stateDir,
    origins: SitesStore.inStateDir(stateDir, config.allowedOrigins).allowedOrigins(),
    caPath: DEFAULT_FIREFOX_CA,
  };
}

const IDS = BROWSERS.map((b) => b.id);

export const browsersCommand: CliCommand = {
  name: 'browsers',
  summary: "Browser policies for cardbridge: Chrome/Chromium/Edge may reach it from the allowed sites (Local Network Access), Firefox trusts its CA",
  usage: `cardbridge browsers status|allow|remove [--browser ${IDS.join('|')}]... [--json] [--root DIR] [--state-dir DIR] [--config FILE]`,
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
