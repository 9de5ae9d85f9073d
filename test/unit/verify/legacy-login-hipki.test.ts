import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SitesStore } from '../../../src/config/sites-store.js';
import { getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { buildHipkiApp } from '../../../src/server/hipki/app.js';
import { memoryAudit } from '../../../src/server/shared/audit.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { LegacyLoginVerifier } from '../../../src/verify/index.js';
import { request } from '../../helpers/http.js';
import { freePort } from '../../helpers/ports.js';

/**
 * End to end on the legacy path: what a government page gets from the HiPKI drop-in (port
 * 61161 protocol) for a signed nonce is what LegacyLoginVerifier accepts — PKCS7 as returned in
 * `signature`, PKCS1 with `certb64` — and the typed ID number is matched against the card.
 */

const SITE = 'https://www.example.gov.tw';
const PIN = '246810';

let pki: MoicaTestPki;
let app: FastifyInstance;
let port: number;
let stateDir: string;

beforeAll(async () => {
  pki = await getTestPki();
  port = await freePort();
  stateDir = mkdtempSync(join(tmpdir(), 'cardbridge-legacy-'));
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
  registry.addReader('Reader 01');
  await registry.insertCard('Reader 01', new VirtualMoicaGen2Card(pki, { pin: PIN }));
  app = await buildHipkiApp({ registry, moica: new MoicaService(registry), sites: SitesStore.inStateDir(stateDir), audit: memoryAudit(), port, logger: false });
  await app.listen({ port, host: '127.0.0.1' });
}, 30_000);

afterAll(async () => {
  await app.close();
  rmSync(stateDir, { recursive: true, force: true });
});

async function hipkiSign(tbs: string, signatureType: 'PKCS7' | 'PKCS1'): Promise<Record<string, unknown>> {
  const pkg = { func: 'MakeSignature', signatureType, tbs, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin: PIN };
  const answer = await request({
    port,
    path: '/sign',
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: SITE },
    body: `tbsPackage=${JSON.stringify(pkg).replace(/\+/g, '%2B')}`,
  });
  const reply = answer.json<Record<string, unknown>>();
  expect(reply.ret_code).toBe(0);
  return reply;
}

it('verifies the PKCS7 and PKCS1 answers of the HiPKI drop-in over a nonce, with the typed ID number', async () => {
  const login = new LegacyLoginVerifier({ trustAnchors: pki.root.pem, intermediates: pki.issuing.pem });
  // TEST_HOLDER's ID ends in 6789; A123456789 is a well-formed fake number with that ending.
  const typed = { idNumber: 'A123456789', birthDate: '0790101' };

  let nonce = await login.issueNonce();
  let reply = await hipkiSign(nonce, 'PKCS7');
  await expect(login.verify({ type: 'PKCS7', signature: reply.signature as string }, { nonce, ...typed })).resolves.toMatchObject({
    name: pki.holder.name,
    idLast4: '6789',
    signatureType: 'PKCS7',
  });

  nonce = await login.issueNonce();
  reply = await hipkiSign(nonce, 'PKCS1');
  const pkcs1 = { type: 'PKCS1' as const, signature: reply.signature as string, certificate: reply.certb64 as string, hashAlgorithm: 'SHA256' };
  await expect(login.verify(pkcs1, { nonce, ...typed })).resolves.toMatchObject({ serialNumber: pki.holder.serialNumber });

  // Another citizen's ID number typed next to this card's signature.
  nonce = await login.issueNonce();
  reply = await hipkiSign(nonce, 'PKCS7');
  await expect(login.verify({ type: 'PKCS7', signature: reply.signature as string }, { nonce, idNumber: 'B223456782' })).rejects.toMatchObject({
    code: 'IdMismatch',
  });
}, 60_000);
