import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { CardBridgeError } from '../../errors.js';
import { NATIVE_DEFAULT_PORT } from '../../config/listeners.js';
import type { ReadyAnnouncement } from '../../daemon/readiness.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, UsageError } from '../io.js';

const DEFAULT_TIMEOUT_S = 30;
const POLL_MS = 100;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_S;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(seconds)) throw new UsageError(`--timeout must be a number of seconds, not "${text}"`);
  return seconds;
}

function parseBridgeUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url must be the native API's URL, like https://127.0.0.1:${NATIVE_DEFAULT_PORT}, not "${text}"`);
  }
  if (url.protocol !== 'https:' || !LOOPBACK_HOSTS.has(url.hostname)) throw new UsageError(`--url must be an https URL on this machine (127.0.0.1), not "${text}"`);
  return url;
}

/**
 * Whether a cardbridge native API answers at `base`: GET /v1/status returns its version. The
 * certificate is not checked: this only asks "is it up?" on loopback, sends nothing and trusts
 * nothing it gets back, and must work before anyone has trusted the daemon's local CA.
 */
function answers(base: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(new URL('/v1/status', base), { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && typeof JSON.parse(body).version === 'string');
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function nativeUrlFrom(readyFile: string): Promise<URL | undefined> {
  let text: string;
  try {
    text = await readFile(readyFile, 'utf8');
  } catch {
    return undefined;
  }
  const announcement = JSON.parse(text) as Partial<ReadyAnnouncement>;
  const native = announcement.listeners?.native;
  if (!native) throw new CardBridgeError('Unavailable', `${readyFile} says the daemon runs without its native listener`, { hint: 'Enable the native listener in the config file.' });
  return new URL(native);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const waitCommand: CliCommand = {
  name: 'wait',
  usage: `cardbridge wait [--url https://127.0.0.1:${NATIVE_DEFAULT_PORT} | --ready-file FILE] [--timeout SECONDS (default ${DEFAULT_TIMEOUT_S})]`,
  help: [
    '',
    'Options:',
    `  --url URL            the native listener to ask for /v1/status (default https://127.0.0.1:${NATIVE_DEFAULT_PORT})`,
    '  --ready-file FILE    wait for the file serve --ready-file writes, then ask the native URL it names',
    `  --timeout SECONDS    give up after this long, exit 1 (default ${DEFAULT_TIMEOUT_S})`,
    '',
    'Only liveness is checked (the certificate is not), so it works before the local CA is trusted.',
    '',
    'Example: cardbridge serve --mock --ready-file /tmp/cb.ready & cardbridge wait --ready-file /tmp/cb.ready --timeout 60',
  ],
  async run(args, io) {
    const { values } = parseCommandArgs(args, { url: { type: 'string' }, 'ready-file': { type: 'string' }, timeout: { type: 'string' } });
    const timeout = parseTimeout(values.timeout);
    if (values.url !== undefined && values['ready-file'] !== undefined) throw new UsageError('give --url or --ready-file, not both');
    const readyFile = values['ready-file'];
    const fixedUrl = values.url !== undefined ? parseBridgeUrl(values.url) : readyFile ? undefined : new URL(`https://127.0.0.1:${NATIVE_DEFAULT_PORT}`);
    const deadline = Date.now() + timeout * 1000;
    let url = fixedUrl;
    for (;;) {
      url = fixedUrl ?? (await nativeUrlFrom(readyFile!));
      const left = deadline - Date.now();
      if (url && (await answers(url, Math.max(200, Math.min(2000, left))))) {
        io.out(`cardbridge is ready at ${url.origin}`);
        return EXIT.ok;
      }
      if (Date.now() + POLL_MS > deadline) break;
      await sleep(POLL_MS);
    }
    if (!url) {
      throw new CardBridgeError('Timeout', `${readyFile} did not appear within ${timeout} s`, {
        hint: `Start the daemon with "cardbridge serve --ready-file ${readyFile}" first, or give it longer (--timeout).`,
      });
    }
    throw new CardBridgeError('Timeout', `no cardbridge daemon answered at ${url.origin} within ${timeout} s`, {
      hint: 'Start it with "cardbridge serve" (or "cardbridge serve --mock" in CI), or give it longer (--timeout); "cardbridge doctor" says what is wrong.',
    });
  },
};
