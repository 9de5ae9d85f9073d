import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureServerCertificate } from '../../src/certs/store.js';

let cached: Promise<{ key: string; cert: string; ca: string }> | undefined;

/** The local CA's leaf for the loopback names, made once per test file, for real HTTPS/WSS. */
export function testTls(): Promise<{ key: string; cert: string; ca: string }> {
  cached ??= ensureServerCertificate(mkdtempSync(join(tmpdir(), 'cardbridge-tls-'))).then(({ key, cert, ca }) => ({ key, cert, ca }));
  return cached;
}
