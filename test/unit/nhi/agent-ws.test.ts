import { verify } from 'node:crypto';
import { GenericTestCard } from '../../../src/emulator/test-card.js';
import { NHI_TEST_IDENTITY, NHI_TEST_IDENTITY_HKSCS, VirtualNhiCard } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { decryptNhiEnCrypt, decryptNhiSecureBasic } from '../../../src/emulator/nhi/relying-site.js';
import { parseHSign } from '../../../src/server/nhi/operations.js';
import { buildNhiWsApp } from '../../../src/server/nhi/ws-app.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { freePort } from '../../helpers/ports.js';
import { request } from '../../helpers/http.js';
import { EchoClient, NHI_READER, NhiAgentRig } from '../../helpers/nhi-agent.js';
import { failingCard } from './helpers.js';

const SITE = 'https://www.example.gov.tw';
const CARD_NO = NHI_TEST_IDENTITY.cardNumber;
const BASIC = `${CARD_NO},A123456789,王小明,0740315,M,0`;

describe('NHI agent WebSocket listener (wss …:7777/echo)', () => {
  let rig: NhiAgentRig;
  let port: number;
  let client: EchoClient | undefined;

  const connect = async (options: Parameters<typeof EchoClient.connect>[2] = {}) => {
    client = await EchoClient.connect(port, rig.tls.ca, options);
    return client;
  };
  const refusal = async (options: Parameters<typeof EchoClient.connect>[2]) => {
    try {
      (await EchoClient.connect(port, rig.tls.ca, options)).close();
    } catch (e) {
      return e as Error & { status?: number; headers?: Record<string, string> };
    }
    throw new Error('the upgrade was accepted');
  };

  beforeAll(async () => {
    rig = await NhiAgentRig.start();
    ({ port } = await rig.ws());
  });

  afterAll(async () => {
    await rig.close();
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    rig.audit.entries.length = 0;
    rig.sam.fault = undefined;
    if (!rig.registry.cardIn(NHI_READER)) await rig.registry.insertCard(NHI_READER, rig.card);
  });

  it('serves the trusted-service page on GET / with the official Server header', async () => {
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `iccert.nhi.gov.tw:${port}`]) {
      const page = await request({ port, path: '/', ca: rig.tls.ca, headers: { host } });
      expect(page.status).toBe(200);
      expect(page.text).toContain('已確認為可信任服務！');
      expect(page.headers.server).toBe('NHIICC-/1.0');
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
  });

  it('answers the page sequence GetBasic → GetVersion → GetRandom → H_Sign with what the card holds', async () => {
    const ws = await connect();
    expect(await ws.ask('GetBasic')).toBe(`GetBasic:${BASIC}`);
    expect(await ws.ask('GetVersion')).toBe('GetVersion:0001');
    const random = await ws.ask('GetRandom');
    expect(random).toMatch(/^GetRandom:\d{16}$/);
    const toSign = `0001${random.slice('GetRandom:'.length)}`;
    const reply = await ws.ask(`H_Sign?Random=${toSign}`);
    expect(reply.startsWith('H_Sign:')).toBe(true);
    const value = reply.slice('H_Sign:'.length);
    expect(value).toHaveLength(256);
    expect(verify('sha256', Buffer.from(toSign, 'ascii'), rig.sam.publicKey, parseHSign(value))).toBe(true);
    expect(rig.sam.signed.at(-1)).toMatchObject({ toBeSigned: toSign, cardId: Buffer.from(CARD_NO) });
    // Only the card reads are audited, each with the page's origin.
    expect(rig.audit.entries).toEqual([
      { origin: SITE, operation: 'nhi-ws.GetBasic', card: 'nhi', reader: NHI_READER, result: 'ok' },
      { origin: SITE, operation: 'nhi-ws.H_Sign', card: 'nhi', reader: NHI_READER, result: 'ok' },
    ]);
  });

  it('answers on iccert.nhi.gov.tw and 127.0.0.1 as well, and to local programs without an Origin', async () => {
    for (const host of [`iccert.nhi.gov.tw:${port}`, `127.0.0.1:${port}`]) {
      const ws = await EchoClient.connect(port, rig.tls.ca, { host });
      expect(await ws.ask('GetVersion')).toBe('GetVersion:0001');
      ws.close();
    }
    const local = await connect({ origin: null });
    expect(await local.ask('GetBasic')).toBe(`GetBasic:${BASIC}`);
    expect(rig.audit.entries[0]!.origin).toBe('(no Origin: local program)');
  });

  it('answers unknown commands, binary frames and malformed H_Sign with 9999', async () => {
    const ws = await connect();
    const signedBefore = rig.sam.signed.length;
    for (const command of ['Hello', 'getversion', 'GetBasic ', 'H_Sign', 'H_Sign?Random=', 'H_Sign?Random=00011234', 'H_Sign?Random=0002123456789012345a', 'H_Sign?Random=000112345678901234567']) {
      expect(await ws.ask(command)).toBe('9999');
    }
    expect(await ws.ask(Buffer.from('GetVersion'))).toBe('9999');
    expect(rig.sam.signed).toHaveLength(signedBefore);
  });

  it('maps failures to the official codes', async () => {
    const ws = await connect();
    // no card → 7004 for everything that needs the card
    rig.registry.removeCard(NHI_READER);
    for (const command of ['GetBasic', 'H_Sign?Random=00011234567890123456', 'EnCrypt?Pwd=abc12345', 'SecureGetBasicWithParam?Pwd=abc12345']) {
      expect(await ws.ask(command)).toBe('7004');
    }
    // the agent's own answers need no card
    expect(await ws.ask('GetVersion')).toBe('GetVersion:0001');
    expect(await ws.ask('GetRandom')).toMatch(/^GetRandom:\d{16}$/);
    // a password of the wrong length is refused before the card is asked
    for (const pwd of ['12345', '1234567890123', '', '密碼密碼密碼']) expect(await ws.ask(`EnCrypt?Pwd=${pwd}`)).toBe('8009');
    // another kind of card → 7004
    await rig.registry.insertCard(NHI_READER, new GenericTestCard());
    expect(await ws.ask('GetBasic')).toBe('7004');
    // the reader held exclusively by another program (clinic software) → 7003
    await rig.registry.insertCard(NHI_READER, rig.card);
    const release = rig.registry.holdExclusively(NHI_READER);
    expect(await ws.ask('GetBasic')).toBe('7003');
    release();
    // a medical-staff card → 8010; the card refusing GET CHALLENGE → 8002
    await rig.registry.insertCard(NHI_READER, new VirtualNhiCard({ staffCard: true }));
    expect(await ws.ask('GetBasic')).toBe('8010');
    await rig.registry.insertCard(NHI_READER, failingCard(new VirtualNhiCard(), (c) => (c[1] === 0x84 ? 0x6985 : undefined)));
    expect(await ws.ask('H_Sign?Random=00011234567890123456')).toBe('8002');
    await rig.registry.insertCard(NHI_READER, rig.card);
    // the SAM refusing the card's answer → 8006; the SAM hanging up on the hello → 8305 (the peer's number for a failed hello answer)
    rig.sam.fault = { step: 'sign', kind: 'reject' };
    expect(await ws.ask('H_Sign?Random=00011234567890123456')).toBe('8006');
    rig.sam.fault = { step: 'handshake', kind: 'close' };
    expect(await ws.ask('H_Sign?Random=00011234567890123456')).toBe('8305');
    rig.sam.fault = undefined;
    // no reader at all → 7002
    rig.registry.removeReader(NHI_READER);
    try {
      expect(await ws.ask('GetBasic')).toBe('7002');
    } finally {
      rig.registry.addReader(NHI_READER);
    }
    expect(rig.audit.entries.map((e) => e.result)).toContain('NoCard (7004)');
  });

  it('answers 4061 when the SAM cannot be reached', async () => {
    const deadPort = await freePort();
    const otherPort = await freePort();
    const app = await buildNhiWsApp({
      nhi: new NhiService(rig.registry, { sam: { host: '127.0.0.1', port: deadPort, connectTimeoutMs: 1000 } }),
      sites: rig.sites,
      audit: rig.audit,
      port: otherPort,
      https: { key: rig.tls.key, cert: rig.tls.cert },
      logger: false,
    });
    await app.listen({ port: otherPort, host: '127.0.0.1' });
    try {
      const ws = await EchoClient.connect(otherPort, rig.tls.ca);
      expect(await ws.ask('H_Sign?Random=00011234567890123456')).toBe('4061');
      ws.close();
    } finally {
      await app.close();
    }
  });

  it('EnCrypt and SecureGetBasicWithParam round-trip through a relying site’s decryption, on Taiwan’s date', async () => {
    // 17:30 UTC on 1 March is already 2 March in Taipei: the receiving server decrypts with its own date.
    const now = new Date('2024-03-01T17:30:00Z');
    const { port: fixedPort } = await rig.ws({ now: () => now });
    const ws = await EchoClient.connect(fixedPort, rig.tls.ca);
    try {
      const encrypted = await ws.ask('EnCrypt?Pwd=Ab3$efg9');
      expect(encrypted).toMatch(/^EnCrypt:(?:[0-9A-F]{16})+$/);
      const hex = encrypted.slice('EnCrypt:'.length);
      expect(decryptNhiEnCrypt(hex, CARD_NO, { year: 2024, month: 3, day: 2 })).toBe('Ab3$efg9');
      expect(() => decryptNhiEnCrypt(hex, CARD_NO, { year: 2024, month: 3, day: 1 })).toThrow();
      // 8 password bytes → 16 bytes of c1 → 3 chunks of 7 → 24 bytes
      expect(hex).toHaveLength(48);
      // the random filler makes each answer different
      expect(await ws.ask('EnCrypt?Pwd=Ab3$efg9')).not.toBe(encrypted);

      const secure = await ws.ask('SecureGetBasicWithParam?Pwd=whatever');
      expect(secure).toMatch(/^SecureGetBasicWithParam:(?:[0-9A-F]{16})+$/);
      expect(decryptNhiSecureBasic(secure.slice('SecureGetBasicWithParam:'.length), { year: 2024, month: 3, day: 2 })).toBe(BASIC);
      expect(rig.audit.entries.map((e) => e.operation)).toEqual(['nhi-ws.EnCrypt', 'nhi-ws.EnCrypt', 'nhi-ws.SecureGetBasic']);
    } finally {
      ws.close();
    }
  });

  it('carries HKSCS names through GetBasic (UTF-8 frame) and SecureGetBasic (Big5-HKSCS)', async () => {
    await rig.registry.insertCard(NHI_READER, new VirtualNhiCard({ identity: NHI_TEST_IDENTITY_HKSCS, terminationFlag: '1' }));
    const now = new Date('2025-12-31T00:00:00Z');
    const { port: fixedPort } = await rig.ws({ now: () => now });
    const ws = await EchoClient.connect(fixedPort, rig.tls.ca);
    try {
      const expected = '000033334444,B223456789,陳𨭆邨,0881231,F,1';
      expect(await ws.ask('GetBasic')).toBe(`GetBasic:${expected}`);
      const secure = (await ws.ask('SecureGetBasicWithParam?Pwd=x')).slice('SecureGetBasicWithParam:'.length);
      expect(decryptNhiSecureBasic(secure, { year: 2025, month: 12, day: 31 })).toBe(expected);
    } finally {
      ws.close();
    }
  });

  it('refuses the upgrade for origins outside the allow-list, foreign Host names and other paths', async () => {
    for (const origin of ['https://evil.example', 'http://www.example.gov.tw', 'https://gov.tw', 'https://evilgov.tw', 'null']) {
      const error = await refusal({ origin });
      expect(error.status).toBe(403);
      expect(error.headers?.server).toBe('NHIICC-/1.0');
    }
    expect((await refusal({ host: `attacker.example:${port}` })).status).toBe(403);
    expect((await refusal({ host: `localhost:${port + 1}` })).status).toBe(403);
    expect((await refusal({ path: '/other' })).status).toBe(404);
    expect(rig.audit.entries).toEqual([]);
    // plain HTTP from a refused origin: the bare code, no CORS
    const page = await request({ port, path: '/', ca: rig.tls.ca, headers: { origin: 'https://evil.example' } });
    expect(page.status).toBe(403);
    expect(page.text).toBe('8201');
    expect(page.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('applies allow-list changes at once', async () => {
    expect((await refusal({ origin: 'https://clinic.example.com' })).status).toBe(403);
    await rig.sites.allow('https://clinic.example.com');
    try {
      const ws = await connect({ origin: 'https://clinic.example.com' });
      expect(await ws.ask('GetVersion')).toBe('GetVersion:0001');
    } finally {
      await rig.sites.revoke('https://clinic.example.com');
    }
  });

  it('closes connections that send oversized frames', async () => {
    const ws = await connect();
    const closed = new Promise<number>((resolve) => ws.ws.once('close', (code) => resolve(code)));
    ws.ws.send(`EnCrypt?Pwd=${'x'.repeat(2000)}`);
    expect(await closed).toBe(1009);
  });
});
