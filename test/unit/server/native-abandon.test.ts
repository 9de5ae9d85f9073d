import https from 'node:https';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildNativeApp } from '../../../src/server/native/app.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';
import { testTls } from '../../helpers/tls.js';

const SITE = 'https://www.example.gov.tw';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a browser closed while cardbridge’s PIN window is open', () => {
  let app: FastifyInstance;
  let port: number;
  let ca: string;
  let stateDir: string;

  beforeEach(async () => {
    ({ ca } = await testTls());
    const tls = await testTls();
    port = await freePort();
    stateDir = mkdtempSync(join(tmpdir(), 'cardbridge-abandon-'));
    const sites = SitesStore.inStateDir(stateDir);
    await sites.allow(SITE);
    const registry = new MockReaderRegistry();
    registry.addReader('MOICA reader');
    await registry.insertCard('MOICA reader', new VirtualMoicaGen2Card(await getTestPki(), { pin: '246810' }));
    app = await buildNativeApp({
      registry,
      policy: () => sites.policy(),
      port,
      https: { key: tls.key, cert: tls.cert },
      logger: false,
      cards: { services: { nhi: new NhiService(registry), moica: new MoicaService(registry) }, sites },
    });
    await app.listen({ port, host: '127.0.0.1' });
  });

  afterEach(async () => {
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const startSign = () =>
    request({
      ca,
      port,
      method: 'POST',
      path: '/v1/moica/sign',
      headers: { origin: SITE, 'content-type': 'application/json' },
      body: JSON.stringify({ digest: createHash('sha256').update('x').digest('base64') }),
    });

  it('frees the card within 5 s: the request is cancelled and the window says why', async () => {
    const first = await startSign();
    expect(first.status).toBe(202);
    const { id, approveUrl } = first.json();
    // the page long-polls, then its browser goes away: the connection drops
    const poll = https.request({ host: '127.0.0.1', port, path: `/v1/requests/${id}?wait=25`, headers: { origin: SITE, host: `127.0.0.1:${port}` }, ca, servername: 'localhost', agent: false });
    poll.on('error', () => undefined);
    poll.end();
    await sleep(500);
    expect((await startSign()).json()).toMatchObject({ code: 'Busy' }); // one PIN prompt per card
    const closedAt = Date.now();
    poll.destroy();

    const url = new URL(approveUrl);
    const windowView = () =>
      request({ ca, port, path: `/ui/api/requests/${id}`, headers: { 'x-cardbridge-secret': url.hash.slice(1), 'sec-fetch-site': 'same-origin' } });
    let view = (await windowView()).json();
    while (view.state === 'pending' && Date.now() - closedAt < 6_000) {
      await sleep(100);
      view = (await windowView()).json();
    }
    expect(Date.now() - closedAt).toBeLessThan(5_000);
    expect(view).toMatchObject({ state: 'failed', problem: { code: 'Cancelled', detail: expect.stringContaining('went away') } });
    expect((await startSign()).status).toBe(202); // the card is free for the next request
  });
});
