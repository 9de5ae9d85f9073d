// Writes cardbridge(1) to stdout from the built CLI's own help texts (summary, usage and the
// per-command option lines), so the man page cannot drift from `cardbridge <command> --help`.
// Usage: node packaging/deb/man-page.mjs APP_DIR VERSION
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const [app, version] = process.argv.slice(2);
const { COMMANDS } = await import(pathToFileURL(join(app, 'dist', 'cli', 'commands', 'index.js')).href);
/** roff-safe text: backslashes escaped, a leading dot or quote neutralised. */
const roff = (text) => text.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1');

const out = [
  `.TH CARDBRIDGE 1 "" "cardbridge ${version}" "User Commands"`,
  '.SH NAME',
  "cardbridge \\- use Taiwan's citizen certificate and NHI cards from web pages",
  '.SH SYNOPSIS',
  '.B cardbridge',
  '\\fIcommand\\fR [\\fIoptions\\fR]',
  '.br',
  '.B cardbridge',
  '\\fIcommand\\fR \\fB\\-\\-help\\fR',
  '.SH DESCRIPTION',
  'cardbridge is a local daemon and command-line tool bridging web pages to MOICA citizen',
  'certificate and NHI health insurance cards through PC/SC readers. The service runs',
  '\\fBcardbridge serve \\-\\-config /etc/cardbridge/config.json\\fR as the user cardbridge.',
  '.SH COMMANDS',
];
for (const c of COMMANDS) {
  out.push(`.SS ${c.name}`, roff(`${c.summary}.`), '.PP', '.nf', roff(`Usage: ${c.usage}`), ...(c.help ?? []).map(roff), '.fi');
}
out.push(
  '.SH FILES',
  '.TP',
  '.I /etc/cardbridge/config.json',
  'The configuration (JSON; schema /usr/lib/cardbridge/docs/config.schema.json, settings in /usr/lib/cardbridge/docs/configuration.md).',
  '.TP',
  '.I /var/lib/cardbridge',
  'State: the local CA (ca.pem), the server certificate and key, the origin allow-list (sites.json).',
  '.SH EXIT STATUS',
  '0 success, 1 the operation failed, 2 usage error, 3 something to install or start.',
  '.SH SEE ALSO',
  '/usr/lib/cardbridge/docs/operations.md, \\fBjournalctl\\fR(1) \\-u cardbridge',
);
process.stdout.write(`${out.join('\n')}\n`);
