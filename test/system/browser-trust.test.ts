import { jest } from '@jest/globals';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { type Server, createServer } from 'node:https';
import { join } from 'node:path';
import { defaultTrustEnvironment, ensureServerCertificate, issueLocalCertificates, trustCa } from '../../src/certs/index.js';
import { type TrustedHome, trustedHome } from '../helpers/trusted-home.js';
import { describeWithTools } from '../helpers/tools.js';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Lets the browser reach the NHI name without touching /etc/hosts.
  '--host-resolver-rules=MAP iccert.nhi.gov.tw 127.0.0.1, MAP www.example.com 127.0.0.1',
];

/**
 * Chromium on Linux trusts what is in $HOME/.pki/nssdb. `cardbridge certs trust` puts the local
 * CA there (HOME is a temporary directory here, never the real user's), and Chromium must then
 * accept the leaf for every name the listeners serve — and reject it without that database.
 */
describeWithTools('Chromium trusts the local CA through the NSS database that certs trust fills', ['chromium', 'certutil'], ['playwright-core'], () => {
  let dir: string;
  let server: Server;
  let port: number;
  let trusted: TrustedHome | undefined;

  beforeAll(async () => {
    trusted = await trustedHome('cardbridge-browser-');
    ({ dir } = trusted);
    const { state } = trusted;
    const { cert, key } = await ensureServerCertificate(state);
    server = createServer({ cert, key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('cardbridge test server');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    trusted?.restore();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(cert: string, key: string): Promise<{ server: Server; port: number }> {
    const extra = createServer({ cert, key }, (_req, res) => res.end('should not be trusted'));
    await new Promise<void>((resolve) => extra.listen(0, '127.0.0.1', resolve));
    return { server: extra, port: (extra.address() as { port: number }).port };
  }

  async function visit(home: string, urls: string[]): Promise<string[]> {
    const { chromium } = await import('playwright-core');
    const context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      env: { ...process.env, HOME: home } as Record<string, string>,
    });
    try {
      const page = await context.newPage();
      const results: string[] = [];
      for (const url of urls) {
        try {
          const response = await page.goto(url, { timeout: 15_000 });
          results.push(`${response?.status()} ${(await page.textContent('body'))?.trim()}`);
        } catch (e) {
          results.push(/net::(ERR_[A-Z_]+)/.exec((e as Error).message)?.[1] ?? (e as Error).message);
        }
      }
      return results;
    } finally {
      await context.close();
    }
  }

  it('accepts https://localhost, https://127.0.0.1 and https://iccert.nhi.gov.tw', async () => {
    expect(existsSync(join(dir, 'home', '.pki', 'nssdb', 'cert9.db'))).toBe(true);
    const results = await visit(join(dir, 'home'), [
      `https://localhost:${port}/`,
      `https://127.0.0.1:${port}/`,
      `https://iccert.nhi.gov.tw:${port}/`,
    ]);
    expect(results).toEqual(['200 cardbridge test server', '200 cardbridge test server', '200 cardbridge test server']);
  });

  it('rejects the same server when the CA is not in the NSS database', async () => {
    const results = await visit(join(dir, 'empty-home'), [`https://localhost:${port}/`]);
    expect(results).toEqual(['ERR_CERT_AUTHORITY_INVALID']);
  });

  it('enforces the name constraints: a trusted cardbridge CA cannot vouch for another site', async () => {
    // Only a test can get such a leaf: the real CA's key is gone before anyone could ask.
    const rogue = await issueLocalCertificates({ leafDnsNames: ['www.example.com'] });
    const home = join(dir, 'rogue-home');
    const results = await trustCa(rogue.caPem, defaultTrustEnvironment(process.env, { homes: [home], systemStoreDir: null }));
    expect(results.every((r) => r.ok)).toBe(true);
    const { server: extra, port: extraPort } = await serve(rogue.leafPem + rogue.caPem, rogue.leafKeyPem);
    try {
      const [result] = await visit(home, [`https://www.example.com:${extraPort}/`]);
      // Chain found and trusted, but the name is outside the permitted subtrees: INVALID, not AUTHORITY_INVALID.
      expect(result).toBe('ERR_CERT_INVALID');
    } finally {
      await new Promise((r) => extra.close(r));
    }
  });
});
