import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { CardBridgeError } from '../../errors.js';
import {
  GPKI_CERTIFICATES,
  type LoadedCrl,
  MOICA_CRL_URLS,
  type ParsedCertificate,
  crlSignedBy,
  loadGovernmentTrust,
  parseCrl,
} from '../../verify/index.js';
import { loadCertificates } from '../../verify/certificates.js';
import { mayHaveIssued, subjectKeyId } from '../../verify/path.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';

/**
 * `cardbridge crl fetch|status`: the operator's side of revocation for `cardbridge/verify`.
 * The verifier never downloads; this command does, only when an operator (or their cron job)
 * runs it, and stores one DER file per issuing CA key in a directory that
 * `CrlStore.fromDirectory` reads (docs/verify-real-certificates.md).
 */

const USAGE =
  'cardbridge crl fetch --dir DIR [--url URL]... [--from-cert FILE]... [--ca FILE]... [--timeout SECONDS] [--dry-run]\n' +
  '       cardbridge crl status --dir DIR [--ca FILE]... [--max-staleness-hours H] [--json]';

const OPTIONS = {
  dir: { type: 'string' },
  url: { type: 'string', multiple: true },
  'from-cert': { type: 'string', multiple: true },
  ca: { type: 'string', multiple: true },
  timeout: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'max-staleness-hours': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** GRCA's G2 complete CRL is about 20 MB; refuse anything far beyond that. */
const MAX_CRL_BYTES = 128 * 1024 * 1024;

interface KnownCa {
  cert: ParsedCertificate;
  /** GPKI id (moica-g2, …) or `ca-<key id>` for a CA given with --ca. */
  name: string;
}

function readCertificateFile(path: string): ParsedCertificate[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CardBridgeError('InvalidInput', `Cannot read ${path}: ${(e as Error).message}`);
  }
  const text = bytes.toString('latin1');
  try {
    return loadCertificates(text.includes('-----BEGIN') ? bytes.toString('utf8') : bytes, path);
  } catch (e) {
    throw new CardBridgeError('InvalidInput', `${path} is not a PEM or DER certificate`, { cause: e });
  }
}

/** The shipped GPKI certificates plus --ca files, each named. --ca may also be MOICA G3 / GRCA G3. */
function knownCas(caFiles: readonly string[]): KnownCa[] {
  const trust = loadGovernmentTrust();
  const out: KnownCa[] = [];
  const certs = [...trust.trustAnchors, ...trust.intermediates, ...caFiles.flatMap(readCertificateFile)];
  for (const cert of certs) {
    if (out.some((k) => k.cert.der.equals(cert.der))) continue;
    out.push({ cert, name: pinOf(cert) ?? `ca-${subjectKeyId(cert.certificate).toString('hex')}` });
  }
  return out;
}

function pinOf(cert: ParsedCertificate): string | undefined {
  const sha = createHash('sha256').update(cert.der).digest('hex');
  return GPKI_CERTIFICATES.find((c) => c.sha256 === sha)?.id;
}


/** CRL distribution point URIs (http/https) of a certificate. */
function distributionPoints(cert: pkijs.Certificate): string[] {
  const ext = cert.extensions?.find((e) => e.extnID === '2.5.29.31');
  const points = (ext?.parsedValue as pkijs.CRLDistributionPoints | undefined)?.distributionPoints ?? [];
  const uris: string[] = [];
  for (const point of points) {
    const names = Array.isArray(point.distributionPoint) ? point.distributionPoint : [];
    for (const name of names) if (name.type === 6 && typeof name.value === 'string' && /^https?:\/\//.test(name.value)) uris.push(name.value);
  }
  return uris;
}

function issuerOf(crl: LoadedCrl, cas: readonly KnownCa[]): KnownCa | undefined {
  return cas.find((ca) => mayHaveIssued(ca.cert.certificate, crl.crl) && crlSignedBy(crl, ca.cert));
}

async function download(url: string, timeoutMs: number): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : ((e as { cause?: Error }).cause?.message ?? (e as Error).message);
    throw new CardBridgeError('TransportError', `${url}: ${why}`);
  }
  if (!response.ok) throw new CardBridgeError('TransportError', `${url}: HTTP ${response.status}`);
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > MAX_CRL_BYTES) throw new CardBridgeError('InvalidInput', `${url}: ${length} bytes is larger than any CRL expected`);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length > MAX_CRL_BYTES) throw new CardBridgeError('InvalidInput', `${url}: ${body.length} bytes is larger than any CRL expected`);
  return body;
}

function storedCrls(dir: string): Array<{ file: string; crl?: LoadedCrl; error?: string }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.crl')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CardBridgeError('InvalidInput', `Cannot read ${dir}: ${(e as Error).message}`);
  }
  return names.map((name) => {
    const file = join(dir, name);
    try {
      return { file, crl: parseCrl(readFileSync(file), file) };
    } catch (e) {
      return { file, error: (e as Error).message };
    }
  });
}

async function fetchCrls(io: CliIO, values: Record<string, unknown>, dir: string): Promise<number> {
  const cas = knownCas((values.ca as string[] | undefined) ?? []);
  let urls = (values.url as string[] | undefined) ?? [];
  for (const file of (values['from-cert'] as string[] | undefined) ?? []) {
    for (const cert of readCertificateFile(file)) urls.push(...distributionPoints(cert.certificate));
  }
  if (urls.length === 0) {
    // The CA certificates' own distribution points (GRCA's CRL of its CAs), and the complete
    // CRL of each MOICA generation whose certificate is known: a G3 CRL cannot be checked
    // without the G3 certificate, so it is fetched only once the operator supplies it.
    urls = cas.flatMap((ca) => distributionPoints(ca.cert.certificate));
    for (const [id, url] of Object.entries(MOICA_CRL_URLS)) {
      if (cas.some((ca) => ca.name === id)) urls.push(url);
      else io.out(`skipping ${url}: give the ${id} certificate with --ca to fetch it (see certs/README.md)`);
    }
  }
  urls = [...new Set(urls)];
  for (const url of urls) {
    if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL, not "${url}"`);
  }
  if (values['dry-run']) {
    for (const url of urls) io.out(`would fetch ${url}`);
    return EXIT.ok;
  }
  const timeoutSeconds = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!(timeoutSeconds > 0)) throw new UsageError('--timeout must be a positive number of seconds');
  mkdirSync(dir, { recursive: true });
  const existing = storedCrls(dir);
  let failed = 0;
  for (const url of urls) {
    try {
      const body = await download(url, timeoutSeconds * 1000);
      let crl: LoadedCrl;
      try {
        crl = parseCrl(body, url);
      } catch (e) {
        throw new CardBridgeError('InvalidInput', (e as Error).message);
      }
      const issuer = issuerOf(crl, cas);
      if (!issuer) {
        throw new CardBridgeError('InvalidInput', `${url}: its signature verifies with no known CA certificate (give the issuing CA with --ca)`, {
          hint: 'MOICA G3 CRLs need the MOICA G3 certificate: download it and pass --ca moica-g3.pem.',
        });
      }
      const file = join(dir, `${issuer.name}.crl`);
      const previous = existing.find((e) => e.file === file)?.crl;
      if (previous && previous.thisUpdate > crl.thisUpdate) {
        throw new CardBridgeError('InvalidInput', `${url}: this CRL (${crl.thisUpdate.toISOString()}) is older than the stored one (${previous.thisUpdate.toISOString()})`);
      }
      // Write then rename, so a verifier never reads half a file.
      const temp = join(dir, `.${issuer.name}.${randomBytes(4).toString('hex')}.tmp`);
      writeFileSync(temp, crl.der);
      try {
        renameSync(temp, file);
      } catch (e) {
        rmSync(temp, { force: true });
        throw e;
      }
      io.out(`${file}: ${crl.revoked.size} entries, next update ${crl.nextUpdate?.toISOString() ?? 'not given'} (from ${url})`);
    } catch (e) {
      failed++;
      io.err(`cardbridge: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return failed === 0 ? EXIT.ok : EXIT.failed;
}

function status(io: CliIO, values: Record<string, unknown>, dir: string): number {
  const cas = knownCas((values.ca as string[] | undefined) ?? []);
  const graceHours = values['max-staleness-hours'] === undefined ? 0 : Number(values['max-staleness-hours']);
  if (!(graceHours >= 0)) throw new UsageError('--max-staleness-hours must be a number ≥ 0');
  const stored = storedCrls(dir);
  if (stored.length === 0) {
    io.err(`cardbridge: No CRL files in ${dir}; run "cardbridge crl fetch --dir ${dir}".`);
    return EXIT.failed;
  }
  const now = Date.now();
  const rows = stored.map(({ file, crl, error }) => {
    if (!crl) return { file, state: 'unreadable', error };
    const issuer = issuerOf(crl, cas);
    const due = crl.nextUpdate ? crl.nextUpdate.getTime() + graceHours * 3600_000 : undefined;
    const state = !issuer ? 'unknown issuer' : due === undefined || now > due ? 'stale' : 'current';
    return {
      file,
      state,
      signature: issuer ? 'ok' : 'no known CA',
      issuer: issuer ? `${issuer.name} (${new X509Certificate(issuer.cert.der).subject.replace(/\n/g, ', ')})` : crl.authorityKeyId?.toString('hex') ?? 'unknown',
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate?.toISOString() ?? null,
      entries: crl.revoked.size,
    };
  });
  if (values.json) io.out(JSON.stringify({ dir, crls: rows }, null, 2));
  else {
    for (const row of rows) {
      io.out(`${row.file}: ${row.state}`);
      if ('issuer' in row) io.out(`  issuer ${row.issuer}; ${row.entries} entries; this update ${row.thisUpdate}; next update ${row.nextUpdate ?? 'not given'}`);
      else io.out(`  ${row.error}`);
    }
  }
  return rows.every((r) => r.state === 'current') ? EXIT.ok : EXIT.failed;
}

export const crlCommand: CliCommand = {
  name: 'crl',
  usage: USAGE,
  help: [
    '',
    'Options:',
    '  --dir DIR                  the CRL directory (fetch writes it, status reads it, the verifier uses it)',
    '  --url URL                  fetch this CRL too (repeatable; default: the CA certificates\' distribution points)',
    '  --from-cert FILE           also fetch the CRLs a certificate names (repeatable)',
    '  --ca FILE                  an extra CA certificate to check CRL signatures with (repeatable; certs/ is always used)',
    '  --timeout SECONDS          per download',
    '  --dry-run                  print what would be fetched, fetch nothing',
    '  --max-staleness-hours H    status: how long after nextUpdate a CRL still counts as current',
    '  --json                     status as JSON',
    '',
    'fetch is the only command that goes to the network for this; status exits 0 only when every CRL is current.',
    '',
    'Example: cardbridge crl fetch --dir /var/lib/mysite/crl && cardbridge crl status --dir /var/lib/mysite/crl',
  ],
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, true);
    const [action, ...extra] = positionals;
    if (action !== 'fetch' && action !== 'status') throw new UsageError('crl needs an action: fetch or status');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (!values.dir) throw new UsageError('crl needs --dir DIR (where the CRL files are kept)');
    return action === 'fetch' ? fetchCrls(io, values, values.dir) : status(io, values, values.dir);
  },
};
