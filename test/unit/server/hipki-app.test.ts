import { constants, createHash, publicEncrypt, verify, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { buildHipkiApp, HIPKI_SERVER_VERSION } from '../../../src/server/hipki/app.js';
import { bmpToText, MAX_BMP_WIDTH } from '../../../src/server/shared/json-bitmap.js';
import { memoryAudit } from '../../../src/server/shared/audit.js';
import { SitesStore } from '../../../src/config/sites-store.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { VirtualMoicaGen1Card } from '../../../src/emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import { VirtualNhiCard, NHI_TEST_IDENTITY } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { createLogger } from '../../../src/daemon/logger.js';
import { freePort } from '../../helpers/ports.js';
import { request, type HttpAnswer } from '../../helpers/http.js';

const SITE = 'https://www.example.gov.tw';
const FOREIGN = 'https://evil.example.com';
const PIN = '246810';
const MOICA_READER = 'MOICA Reader 01';
const OTHER_READER = '讀卡機 NHI 02'; // non-ASCII on purpose: the BMP must escape it
const SERIAL = 'TP03000012345678';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The form body a legacy page sends: the JSON as is, with every `+` replaced by `%2B`. */
function pageBody(pkg: object): string {
  return `tbsPackage=${JSON.stringify(pkg).replace(/\+/g, '%2B')}`;
}

describe('HiPKI Local Server drop-in', () => {
  let app: FastifyInstance;
  let port: number;
  let own: string;
  let registry: MockReaderRegistry;
  let card: VirtualMoicaGen2Card;
  let pki: MoicaTestPki;
  let stateDir: string;
  let sites: SitesStore;
  let audit: ReturnType<typeof memoryAudit>;
  let logText: string;
  let clock: Date | undefined;

  const post = (path: string, body: string, headers: Record<string, string> = { origin: SITE }): Promise<HttpAnswer> =>
    request({ port, path, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  const get = (path: string, headers: Record<string, string> = {}) => request({ port, path, headers });
  /** The body as bytes (helpers/http.ts decodes text as UTF-8). */
  const getRaw = (path: string, headers: Record<string, string> = {}) =>
    new Promise<Buffer>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers }, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        })
        .on('error', reject);
    });
  const cipherFor = (plain: Buffer) => publicEncrypt({ key: pki.encrypt.publicKey, padding: constants.RSA_PKCS1_PADDING }, plain).toString('base64');
  const signPkg = (extra: object) => ({ func: 'MakeSignature', signatureType: 'PKCS1', tbs: 'hello 你好', tbsEncoding: 'NONE', hashAlgorithm: 'SHA256', pin: PIN, ...extra });

  beforeAll(async () => {
    pki = await getTestPki();
  });

  beforeEach(async () => {
    port = await freePort();
    own = `http://localhost:${port}`;
    stateDir = mkdtempSync(join(tmpdir(), 'cardbridge-hipki-'));
    sites = SitesStore.inStateDir(stateDir);
    registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5] });
    registry.addReader(MOICA_READER);
    registry.addReader(OTHER_READER);
    card = new VirtualMoicaGen2Card(pki, { pin: PIN, serialNumber: SERIAL });
    await registry.insertCard(MOICA_READER, card);
    await registry.insertCard(OTHER_READER, new VirtualNhiCard({ identity: NHI_TEST_IDENTITY }));
    audit = memoryAudit();
    logText = '';
    const sink = new Writable({ write: (chunk, _enc, done) => ((logText += chunk.toString()), done()) });
    clock = undefined;
    app = await buildHipkiApp({
      registry,
      moica: new MoicaService(registry),
      sites,
      audit,
      port,
      logger: createLogger('debug', sink),
      now: () => clock ?? new Date(),
    });
    await app.listen({ port, host: '127.0.0.1' });
  });

  afterEach(async () => {
    await app.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  describe('version and pkcs11info', () => {
    it('GET / reports a version that passes every page check, as string and as number', async () => {
      const answer = await get('/');
      expect(answer.status).toBe(200);
      const version = /version:(?<v>[\d.]+)/.exec(answer.text)?.groups?.v;
      expect(version).toBe(HIPKI_SERVER_VERSION);
      for (const minimum of ['1.3.4.103328', '1.3.4.13', '1.3.4.3', '1.3.4.103305', '1.3.4.10']) {
        expect(version! > minimum).toBe(true);
        expect(version!.localeCompare(minimum)).toBe(1);
        expect(Number(version!.split('.')[3]) > Number(minimum.split('.')[3])).toBe(true);
      }
      // the number the docs warn about
      expect('1.3.4.200000' > '1.3.4.3').toBe(false);
    });

    it('answers GET and empty POST /pkcs11info with slots; a reader without a MOICA card is "unknown token"', async () => {
      for (const answer of [await get('/pkcs11info'), await post('/pkcs11info', ''), await get('/pkcs11info', { host: `localhost:${port}` })]) {
        expect(answer.status).toBe(200);
        expect(answer.json()).toEqual({
          func: 'pkcs11info',
          ret_code: 0,
          last_error: 0,
          serverVersion: HIPKI_SERVER_VERSION,
          slots: [
            { slotDescription: MOICA_READER, token: { serialNumber: SERIAL, label: 'MOICA', manufacturerID: 'cardbridge', model: expect.stringContaining('gen 2') } },
            { slotDescription: OTHER_READER, token: 'unknown token' },
          ],
        });
      }
      expect((await post('/pkcs11info', '')).headers['access-control-allow-origin']).toBe(SITE);
    });

    it('withcert=true adds the certificates and keys as the card holds them', async () => {
      const info = (await get('/pkcs11info?withcert=true', { origin: SITE })).json<Json>();
      const token = info.slots[0].token;
      const byLabel = (label: string) => token.certs.filter((c: Json) => c.label === label);
      expect(byLabel('cert1')).toHaveLength(1);
      const cert1 = byLabel('cert1')[0];
      expect(Buffer.from(cert1.certb64, 'base64').equals(pki.sign.der)).toBe(true);
      expect(cert1).toMatchObject({ usage: 'digitalSignature', subjectID: pki.holder.idLastFour, id: Buffer.from('SIGN').toString('base64') });
      expect(cert1.subjectDN).toContain(`serialNumber=${pki.holder.serialNumber}`);
      expect(cert1.subjectDN).not.toContain(', ');
      const x509 = new X509Certificate(pki.sign.der);
      expect(cert1.sn).toBe(x509.serialNumber.toLowerCase());
      expect(cert1.notBeforeT).toBe(Math.floor(new Date(x509.validFrom).getTime() / 1000));
      expect(cert1.notAfterT).toBe(Math.floor(new Date(x509.validTo).getTime() / 1000));
      const cert2 = byLabel('cert2')[0];
      expect(Buffer.from(cert2.certb64, 'base64').equals(pki.encrypt.der)).toBe(true);
      expect(cert2.usage).toBe('keyEncipherment|dataEncipherment');
      expect(byLabel('CA Cert').map((c: Json) => c.usage)).toEqual(['keyCertSign|cRLSign', 'keyCertSign|cRLSign']);
      expect(token.keys.map((k: Json) => k.label)).toEqual(['key1', 'key2']);
      expect(info.slots[1].token).toBe('unknown token');
      expect(audit.entries.map((e) => [e.origin, e.operation, e.result])).toEqual([[SITE, 'hipki.pkcs11info.withcert', 'ok']]);
    });

    it('no reader at all is 0x76100003, still with the serverVersion', async () => {
      registry.removeReader(MOICA_READER);
      registry.removeReader(OTHER_READER);
      expect((await get('/pkcs11info')).json()).toMatchObject({ func: 'pkcs11info', ret_code: 0x76100003, serverVersion: HIPKI_SERVER_VERSION });
    });
  });

  describe('MakeSignature', () => {
    it.each(['SHA1', 'SHA256', 'SHA384', 'SHA512'])('PKCS1 with %s over the UTF-8 tbs verifies with the signing certificate', async (hash) => {
      const reply = (await post('/sign', pageBody(signPkg({ hashAlgorithm: hash, withCardSN: 'true' })))).json<Json>();
      expect(reply).toEqual({ func: 'sign', ret_code: 0, last_error: 0, signature: expect.any(String), certb64: pki.sign.der.toString('base64'), cardSN: SERIAL, version: HIPKI_SERVER_VERSION });
      expect(verify(hash.replace('SHA', 'sha'), Buffer.from('hello 你好', 'utf8'), pki.sign.publicKey, Buffer.from(reply.signature, 'base64'))).toBe(true);
    });

    it('base64 tbs with %2B restored, a space-for-plus page, and a URI-encoded tbs holding quotes', async () => {
      const bytes = Buffer.from([0xfb, 0xef, 0xbe, 0x00, 0x01, 0xfe, 0xff]); // base64 "++++AAH+/w=="
      const b64 = bytes.toString('base64');
      expect(b64).toContain('+');
      const answers = [
        await post('/sign', pageBody(signPkg({ tbs: b64, tbsEncoding: 'base64' }))),
        // a page that did not encode `+`: the form decoding turns them into spaces
        await post('/sign', `tbsPackage=${JSON.stringify(signPkg({ tbs: b64, tbsEncoding: 'base64' }))}`),
        // fully encoded (encodeURIComponent of the whole JSON)
        await post('/sign', `tbsPackage=${encodeURIComponent(JSON.stringify(signPkg({ tbs: b64, tbsEncoding: 'base64' })))}`),
      ];
      for (const answer of answers) {
        const reply = answer.json<Json>();
        expect(reply.ret_code).toBe(0);
        expect(verify('sha256', bytes, pki.sign.publicKey, Buffer.from(reply.signature, 'base64'))).toBe(true);
      }
      const text = 'say "hi" & 1+1=2 100%';
      const quoted = (await post('/sign', `tbsPackage=${JSON.stringify(signPkg({ tbs: encodeURIComponent(text), pin: encodeURIComponent(PIN) }))}`)).json<Json>();
      expect(quoted.ret_code).toBe(0);
      expect(verify('sha256', Buffer.from(text), pki.sign.publicKey, Buffer.from(quoted.signature, 'base64'))).toBe(true);
    });

    it('PKCS7 is an attached CMS SignedData that openssl verifies against the test CA, signing time only when asked', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cardbridge-hipki-cms-'));
      try {
        writeFileSync(join(dir, 'ca.pem'), pki.caBundlePem);
        for (const withSigningTime of ['true', 'false']) {
          const tbs = `login challenge ${withSigningTime}`;
          const reply = (await post('/sign', pageBody(signPkg({ signatureType: 'PKCS7', tbs, withSigningTime })))).json<Json>();
          expect(reply.ret_code).toBe(0);
          writeFileSync(join(dir, 'sig.der'), Buffer.from(reply.signature, 'base64'));
          const content = execFileSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'sig.der'), '-CAfile', join(dir, 'ca.pem'), '-binary', '-purpose', 'any'], { stdio: ['ignore', 'pipe', 'pipe'] });
          expect(content.toString()).toBe(tbs);
          const printed = execFileSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'sig.der')]).toString();
          expect(printed.includes('signingTime')).toBe(withSigningTime === 'true');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('RAW signs a DigestInfo as given (PKCS#1 v1.5 type 1)', async () => {
      const data = Buffer.from('raw data');
      const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(data).digest()]);
      const reply = (await post('/sign', pageBody(signPkg({ signatureType: 'RAW', tbs: digestInfo.toString('base64'), tbsEncoding: 'base64' })))).json<Json>();
      expect(reply.ret_code).toBe(0);
      expect(verify('sha256', data, pki.sign.publicKey, Buffer.from(reply.signature, 'base64'))).toBe(true);
    });

    it('withCardSN "false" omits cardSN; absent fields and the __NotExistedTag__ sentinel are defaults', async () => {
      expect((await post('/sign', pageBody(signPkg({ withCardSN: 'false' })))).json()).not.toHaveProperty('cardSN');
      const sentinel = '__NotExistedTag__';
      const reply = (await post('/sign', pageBody(signPkg({ withCardSN: sentinel, keyidb64: sentinel, nonce: '', checkValidity: sentinel, slotDescription: sentinel, withSigningTime: sentinel })))).json<Json>();
      expect(reply).toMatchObject({ ret_code: 0, cardSN: SERIAL });
    });

    it('slotDescription picks the reader; "0" means any; an unknown reader is 0x76100003', async () => {
      expect((await post('/sign', pageBody(signPkg({ slotDescription: MOICA_READER })))).json()).toMatchObject({ ret_code: 0 });
      expect((await post('/sign', pageBody(signPkg({ slotDescription: 0 })))).json()).toMatchObject({ ret_code: 0 });
      expect((await post('/sign', pageBody(signPkg({ slotDescription: 'No Such Reader' })))).json()).toMatchObject({ func: 'sign', ret_code: 0x76100003 });
      expect((await post('/sign', pageBody(signPkg({ slotDescription: OTHER_READER })))).json()).toMatchObject({ func: 'sign', ret_code: 0x76000006 });
    });

    it('keyidb64 and checkValidity are checked before the PIN is used', async () => {
      expect((await post('/sign', pageBody(signPkg({ keyidb64: Buffer.from('SIGN').toString('base64') })))).json()).toMatchObject({ ret_code: 0 });
      const before = card.received.length;
      expect((await post('/sign', pageBody(signPkg({ keyidb64: Buffer.from('KEYX').toString('base64') })))).json()).toMatchObject({ ret_code: 0x7610000c });
      expect((await post('/sign', pageBody(signPkg({ keyidb64: '***' })))).json()).toMatchObject({ ret_code: 0x76600003 });
      clock = new Date(Date.now() + 20 * 365 * 24 * 3600 * 1000);
      expect((await post('/sign', pageBody(signPkg({ checkValidity: 'true' })))).json()).toMatchObject({ ret_code: 0x76500002 });
      clock = new Date(Date.now() - 20 * 365 * 24 * 3600 * 1000);
      expect((await post('/sign', pageBody(signPkg({ checkValidity: 'true' })))).json()).toMatchObject({ ret_code: 0x76500001 });
      expect(card.received.slice(before).filter((c) => c[1] === 0x20)).toEqual([]);
      clock = undefined;
      expect((await post('/sign', pageBody(signPkg({ checkValidity: 'true' })))).json()).toMatchObject({ ret_code: 0 });
    });

    it('wrong PINs map 63 Cx to the vendor numbers, each PIN is sent once, a blocked card is 0xA4', async () => {
      const verifies = () => card.received.filter((c) => c[1] === 0x20).length;
      const wrong = pageBody(signPkg({ pin: '999999' }));
      const popup = { origin: own, 'x-hipki-site': SITE, 'sec-fetch-site': 'same-origin', 'x-cardbridge-confirm-last-try': 'yes' };
      const start = verifies();
      expect((await post('/sign', wrong)).json()).toMatchObject({ func: 'sign', ret_code: 0x76100006, last_error: -2147483646 });
      expect(verifies()).toBe(start + 1);
      expect((await post('/sign', wrong)).json()).toMatchObject({ ret_code: 0x76100006, last_error: -2147483647 });
      expect(verifies()).toBe(start + 2);
      // the last try, confirmed in cardbridge's own popup
      expect((await post('/sign', wrong, popup)).json()).toMatchObject({ ret_code: 0x76100006, last_error: 0xa4 });
      expect(card.triesLeft).toBe(0);
      const blocked = (await post('/sign', pageBody(signPkg({})))).json<Json>();
      expect(blocked).toMatchObject({ ret_code: 0x76100006, last_error: 0xa4, message: expect.stringContaining('已鎖卡') });
      expect(blocked.message2).toContain('moica.nat.gov.tw');
      expect(blocked.message2).toContain('用戶代碼');
      expect(verifies()).toBe(start + 3);
      expect(audit.entries.map((e) => e.result)).toEqual(['PinIncorrect', 'PinIncorrect', 'PinBlocked', 'PinBlocked']);
    });

    it('three wrong PINs from an allowed origin leave one try; the last try is refused without a VERIFY (sign, umakeSig, decrypt)', async () => {
      const verifies = () => card.received.filter((c) => c[1] === 0x20).length;
      const wrong = pageBody(signPkg({ pin: '999999' }));
      for (let i = 0; i < 3; i++) await post('/sign', wrong);
      expect(card.triesLeft).toBe(1);
      const before = verifies();
      const refused = (await post('/sign', pageBody(signPkg({})))).json<Json>();
      expect(refused).toMatchObject({ func: 'sign', ret_code: 0x76100006, last_error: -2147483647 });
      expect(refused.message2).toContain('did not send the PIN');
      expect(refused).not.toHaveProperty('confirmLastTry'); // only cardbridge's own popup is offered the confirmation
      expect((await post('/umakeSig', pageBody({ ...signPkg({}), func: 'umakeSig' }))).json()).toMatchObject({ func: 'umakeSig', ret_code: 0x76100006, last_error: -2147483647 });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('x')), pin: PIN }))).json()).toMatchObject({ func: 'decrypt', ret_code: 0x76100006, last_error: -2147483647 });
      // a page cannot set the confirmation: not as a header from its own origin, not in the package
      expect((await post('/sign', pageBody(signPkg({ confirmLastTry: 'true' })), { origin: SITE, 'x-cardbridge-confirm-last-try': 'yes' })).json()).toMatchObject({ ret_code: 0x76100006, last_error: -2147483647 });
      expect(verifies()).toBe(before);
      expect(card.triesLeft).toBe(1);
    });

    it('cardbridge’s own popup is told which card needs the last-try confirmation, and its confirmed re-post signs', async () => {
      const verifies = () => card.received.filter((c) => c[1] === 0x20).length;
      for (let i = 0; i < 2; i++) await post('/sign', pageBody(signPkg({ pin: '999999' })));
      const popup = { origin: own, 'x-hipki-site': SITE, 'sec-fetch-site': 'same-origin' };
      const before = verifies();
      const asked = (await post('/sign', pageBody(signPkg({})), popup)).json<Json>();
      expect(asked).toMatchObject({ ret_code: 0x76100006, last_error: -2147483647, confirmLastTry: { card: SERIAL, reader: MOICA_READER } });
      expect(verifies()).toBe(before);
      expect((await post('/sign', pageBody(signPkg({})), { ...popup, 'x-cardbridge-confirm-last-try': 'yes' })).json()).toMatchObject({ ret_code: 0 });
      expect(verifies()).toBe(before + 1);
      expect(card.triesLeft).toBe(3);
      // the count was reset by the success: no confirmation needed any more
      expect((await post('/sign', pageBody(signPkg({})))).json()).toMatchObject({ ret_code: 0 });
    });

    it('request errors: missing PIN, PIN length, JSON, parameters, base64', async () => {
      const before = card.received.length;
      const cases: Array<[string, number, number]> = [
        [pageBody(signPkg({ pin: '' })), 0x76000998, 0],
        [pageBody(signPkg({ pin: '__NotExistedTag__' })), 0x76000998, 0],
        [pageBody(signPkg({ pin: '12' })), 0x76100006, 0xa2],
        ['tbsPackage={"func":"MakeSignature",', 0x7600000b, 0],
        ['', 0x7600000c, 0],
        ['other=1', 0x7600000c, 0],
        [pageBody(signPkg({ hashAlgorithm: 'MD5' })), 0x7600000c, 0],
        [pageBody(signPkg({ signatureType: 'XML' })), 0x7600000c, 0],
        [pageBody(signPkg({ tbs: undefined })), 0x7600000c, 0],
        [pageBody(signPkg({ tbs: 'not base64!', tbsEncoding: 'base64' })), 0x76600001, 0],
      ];
      for (const [body, ret, last] of cases) {
        expect([body, (await post('/sign', body)).json()]).toEqual([body, expect.objectContaining({ func: 'sign', ret_code: ret, last_error: last, message: expect.any(String) })]);
      }
      expect(card.received.slice(before).filter((c) => c[1] === 0x20)).toEqual([]);
    });

    it('no card is 0x76000006', async () => {
      registry.removeCard(MOICA_READER);
      expect((await post('/sign', pageBody(signPkg({})))).json()).toMatchObject({ func: 'sign', ret_code: 0x76000006 });
    });

    it('umakeSig nests the signature under data', async () => {
      const reply = (await post('/umakeSig', pageBody(signPkg({ func: 'umakeSig' })))).json<Json>();
      expect(reply).toMatchObject({ func: 'umakeSig', ret_code: 0, data: { signature: expect.any(String), certb64: pki.sign.der.toString('base64'), cardSN: SERIAL } });
      expect(verify('sha256', Buffer.from('hello 你好'), pki.sign.publicKey, Buffer.from(reply.data.signature, 'base64'))).toBe(true);
    });

    it('works the same on a generation-1 card', async () => {
      const gen1 = new VirtualMoicaGen1Card(pki, { pin: PIN, serialNumber: 'TP01000000000001' });
      await registry.insertCard(MOICA_READER, gen1);
      const reply = (await post('/sign', pageBody(signPkg({ signatureType: 'PKCS1' })))).json<Json>();
      expect(reply).toMatchObject({ ret_code: 0, cardSN: 'TP01000000000001' });
      expect(verify('sha256', Buffer.from('hello 你好'), pki.sign.publicKey, Buffer.from(reply.signature, 'base64'))).toBe(true);
    });
  });

  describe('a request that names a card (two MOICA cards)', () => {
    const SECOND_READER = 'MOICA Reader 03';
    const SECOND_SERIAL = 'TP03000087654321';
    let second: VirtualMoicaGen2Card;
    const verifiesOf = (c: VirtualMoicaGen2Card) => c.received.filter((apdu) => apdu[1] === 0x20).length;

    beforeEach(async () => {
      registry.addReader(SECOND_READER);
      // Same PIN on purpose: a PIN sent to the wrong card would be accepted there.
      second = new VirtualMoicaGen2Card(pki, { pin: PIN, serialNumber: SECOND_SERIAL });
      await registry.insertCard(SECOND_READER, second);
    });

    it('pkcs11info lists one slot per reader, each MOICA card with its own serialNumber', async () => {
      const { slots } = (await get('/pkcs11info')).json<Json>();
      expect(slots.map((s: Json) => [s.slotDescription, s.token.serialNumber ?? s.token])).toEqual([
        [MOICA_READER, SERIAL],
        [OTHER_READER, 'unknown token'],
        [SECOND_READER, SECOND_SERIAL],
      ]);
    });

    it('without a name the first reader’s card signs (as before)', async () => {
      expect((await post('/sign', pageBody(signPkg({})))).json()).toMatchObject({ ret_code: 0, cardSN: SERIAL });
      expect(verifiesOf(second)).toBe(0);
    });

    it.each([
      ['cardid', { cardid: SECOND_SERIAL }],
      ['cardid in lower case', { cardid: SECOND_SERIAL.toLowerCase() }],
      ['slotDescription', { slotDescription: SECOND_READER }],
      ['readername', { readername: SECOND_READER }],
      ['ChtICToken’s full set (readername, slotDescription "0", cardid)', { readername: SECOND_READER, slotDescription: '0', cardid: SECOND_SERIAL }],
      ['cardid and its reader', { cardid: SECOND_SERIAL, slotDescription: SECOND_READER }],
    ])('%s: the named card signs and the other card never gets a VERIFY', async (_name, naming) => {
      for (const path of ['/sign', '/umakeSig']) {
        const reply = (await post(path, pageBody(signPkg({ func: path === '/sign' ? 'MakeSignature' : 'umakeSig', ...naming })))).json<Json>();
        expect(reply).toMatchObject({ ret_code: 0 });
        expect(reply.cardSN ?? reply.data.cardSN).toBe(SECOND_SERIAL);
      }
      expect(verifiesOf(second)).toBe(2);
      expect(verifiesOf(card)).toBe(0);
    });

    it('the first card named by cardid signs, not the second', async () => {
      expect((await post('/sign', pageBody(signPkg({ cardid: SERIAL })))).json()).toMatchObject({ ret_code: 0, cardSN: SERIAL });
      expect(verifiesOf(second)).toBe(0);
    });

    it.each([
      ['a card that is not inserted', { cardid: 'TP03000000000000' }, 0x76000006],
      ['a card in another reader than the one named', { cardid: SERIAL, slotDescription: SECOND_READER }, 0x76000006],
      ['readername and slotDescription naming different readers', { readername: MOICA_READER, slotDescription: SECOND_READER }, 0x7600000c],
      ['a reader that is not connected', { readername: 'No Such Reader' }, 0x76100003],
    ])('%s is refused and no card gets a VERIFY', async (_name, naming, retCode) => {
      expect((await post('/sign', pageBody(signPkg(naming)))).json()).toMatchObject({ func: 'sign', ret_code: retCode });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('x')), pin: PIN, ...naming }))).json()).toMatchObject({
        func: 'decrypt',
        ret_code: retCode,
      });
      expect(verifiesOf(card)).toBe(0);
      expect(verifiesOf(second)).toBe(0);
    });

    it('a card swapped into the named reader after pkcs11info is refused before the PIN', async () => {
      expect((await get('/pkcs11info')).json<Json>().slots[2].token.serialNumber).toBe(SECOND_SERIAL);
      const swapped = new VirtualMoicaGen2Card(pki, { pin: PIN, serialNumber: 'TP03000011112222' });
      await registry.insertCard(SECOND_READER, swapped);
      expect((await post('/sign', pageBody(signPkg({ cardid: SECOND_SERIAL, readername: SECOND_READER })))).json()).toMatchObject({ ret_code: 0x76000006 });
      expect(verifiesOf(swapped)).toBe(0);
      expect(verifiesOf(card)).toBe(0);
    });

    it('DecryptData uses the named card', async () => {
      const reply = (await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('秘密')), pin: PIN, cardid: SECOND_SERIAL }))).json<Json>();
      expect(reply).toMatchObject({ ret_code: 0, plain: '秘密' });
      expect(verifiesOf(second)).toBe(1);
      expect(verifiesOf(card)).toBe(0);
    });
  });

  describe('DecryptData', () => {

    it('decrypts with the encryption key, plain text or base64', async () => {
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('秘密 secret')), pin: PIN }))).json()).toEqual({
        func: 'decrypt', ret_code: 0, last_error: 0, plain: '秘密 secret', version: HIPKI_SERVER_VERSION,
      });
      const bytes = Buffer.from([0, 1, 2, 0xff]);
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(bytes), plainEncoding: 'base64', pin: PIN }))).json()).toMatchObject({ plain: bytes.toString('base64') });
    });

    it('decrypt errors: base64, parameters, missing PIN, wrong PIN', async () => {
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: '@@', pin: PIN }))).json()).toMatchObject({ func: 'decrypt', ret_code: 0x76600002 });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', pin: PIN }))).json()).toMatchObject({ ret_code: 0x7600000c });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: Buffer.alloc(10).toString('base64'), pin: PIN }))).json()).toMatchObject({ ret_code: 0x7600000c });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('x')) }))).json()).toMatchObject({ ret_code: 0x76000998 });
      expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: cipherFor(Buffer.from('x')), pin: '000000' }))).json()).toMatchObject({ ret_code: 0x76100006, last_error: -2147483646 });
    });
  });

  describe('who may call', () => {
    it('an origin off the allow-list gets 0x76000031 in HiPKI JSON and no CORS, on every endpoint', async () => {
      const before = card.received.length;
      for (const answer of [
        await post('/sign', pageBody(signPkg({})), { origin: FOREIGN }),
        await post('/decrypt', pageBody({ func: 'DecryptData', cipher: 'AA==', pin: PIN }), { origin: 'http://www.example.gov.tw' }),
        await get('/pkcs11info', { origin: FOREIGN }),
        await get('/p11Image.bmp', { origin: FOREIGN }),
        await post('/sign', pageBody(signPkg({})), { origin: 'null' }),
      ]) {
        expect(answer.status).toBe(403);
        expect(answer.json()).toMatchObject({ ret_code: 0x76000031, message: '在未授權的網站執行元件' });
        expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      }
      expect(card.received.length).toBe(before);
    });

    it('a browser request without Origin (cross-site form POST, no-cors image) is refused; same-origin and local programs are not', async () => {
      const before = card.received.length;
      for (const site of ['cross-site', 'same-site', 'none']) {
        const headers = { 'sec-fetch-site': site, 'sec-fetch-mode': 'navigate' };
        expect((await post('/sign', pageBody(signPkg({})), headers)).json()).toMatchObject({ func: 'sign', ret_code: 0x76000031 });
        expect((await post('/decrypt', pageBody({ func: 'DecryptData', cipher: 'AA==', pin: PIN }), headers)).json()).toMatchObject({ ret_code: 0x76000031 });
        expect((await post('/umakeSig', pageBody(signPkg({})), headers)).json()).toMatchObject({ ret_code: 0x76000031 });
      }
      const image = await getRaw('/p11Image.bmp', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' });
      expect(JSON.parse(bmpToText(image))).toMatchObject({ ret_code: 0x76000031 });
      expect((await get('/pkcs11info?withcert=true', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' })).json()).toMatchObject({ ret_code: 0x76000031 });
      expect(card.received.length).toBe(before);
      // the user typing the address, the bridge's own pages, a local program
      expect((await get('/pkcs11info', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' })).json()).toMatchObject({ ret_code: 0 });
      expect((await get('/pkcs11info', { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' })).json()).toMatchObject({ ret_code: 0 });
      expect((await post('/sign', pageBody(signPkg({})), {})).json()).toMatchObject({ ret_code: 0 });
      expect(audit.entries.map((e) => e.origin)).toEqual(['user (address bar)', 'cardbridge (own page)', 'local program (no Origin)']);
    });

    it('the bridge’s popup may work only for an allowed site it names', async () => {
      const popup = (site: string) => ({ origin: own, 'x-hipki-site': site, 'sec-fetch-site': 'same-origin' });
      expect((await post('/sign', pageBody(signPkg({})), popup(FOREIGN))).json()).toMatchObject({ func: 'sign', ret_code: 0x76000031 });
      expect((await post('/sign', pageBody(signPkg({})), popup('null'))).json()).toMatchObject({ ret_code: 0x76000031 });
      expect((await post('/sign', pageBody(signPkg({})), popup(SITE))).json()).toMatchObject({ ret_code: 0 });
      expect((await post('/CardManagement/ResetPin', pageBody({ func: 'ResetPin' }), popup(FOREIGN))).json()).toMatchObject({ func: 'ResetPin', ret_code: 0x76000031 });
      // the vendor popups' page posts every func to /hipki-ui/unsupported
      expect((await post('/hipki-ui/unsupported', pageBody({ func: 'MakeSignature' }), popup(FOREIGN))).json()).toMatchObject({ func: 'MakeSignature', ret_code: 0x76000031 });
      expect((await post('/hipki-ui/unsupported', pageBody({ func: 'MakeSignature' }), popup(SITE))).json()).toMatchObject({ func: 'MakeSignature', ret_code: 0x7600000e });
      expect(audit.entries.map((e) => [e.origin, e.operation])).toEqual([[SITE, 'hipki.sign PKCS1/SHA256']]);
    });

    it('refuses foreign Host names (DNS rebinding) and answers both loopback names', async () => {
      expect((await get('/pkcs11info', { host: `evil.example.com:${port}` })).status).toBe(403);
      expect((await get('/', { host: `localhost:${port}` })).status).toBe(200);
      expect((await get('/', { host: `127.0.0.1:${port}` })).status).toBe(200);
    });

    it('answers preflights of allowed sites with Private Network Access', async () => {
      const answer = await request({ port, path: '/sign', method: 'OPTIONS', headers: { origin: SITE, 'access-control-request-method': 'POST', 'access-control-request-private-network': 'true' } });
      expect(answer.status).toBe(204);
      expect(answer.headers['access-control-allow-origin']).toBe(SITE);
      expect(answer.headers['access-control-allow-private-network']).toBe('true');
    });
  });

  describe('p11Image.bmp', () => {
    it('packs the pkcs11info JSON (ASCII-escaped) into B,G,R of a 1-pixel-high 24-bit BMP, ending in a zero pixel', async () => {
      const answer = await request({ port, path: '/p11Image.bmp', headers: { origin: SITE } });
      expect(answer.headers['content-type']).toBe('image/bmp');
      expect(answer.headers['access-control-allow-origin']).toBe(SITE);
      const raw = await getRaw('/p11Image.bmp', { origin: SITE });
      expect(raw.subarray(0, 2).toString()).toBe('BM');
      expect(raw.readUInt16LE(28)).toBe(24);
      expect(raw.readInt32LE(22)).toBe(1);
      const width = raw.readInt32LE(18);
      expect(width).toBeLessThanOrEqual(MAX_BMP_WIDTH);
      const offset = raw.readUInt32LE(10);
      const pixels = raw.subarray(offset, offset + width * 3);
      expect([...pixels.subarray(pixels.length - 3)]).toEqual([0, 0, 0]);
      const text = pixels.subarray(0, pixels.length - 3).toString('latin1');
      expect(text).toMatch(/^[\x20-\x7e]+$/);
      expect(text.length % 3).toBe(0);
      expect(bmpToText(raw)).toBe(text);
      expect(text).toContain('\\u8b80'); // 讀 escaped
      const info = JSON.parse(text);
      expect(info).toEqual((await get('/pkcs11info', { origin: SITE })).json());
      expect(info.slots[1].slotDescription).toBe(OTHER_READER);
    });

    it('withcert=true does not fit in 2000 pixels: the image says so instead of truncating', async () => {
      const raw = await getRaw('/p11Image.bmp?withcert=true', { origin: SITE });
      expect(JSON.parse(bmpToText(raw))).toMatchObject({ func: 'pkcs11info', ret_code: 0x7600000c });
    });
  });

  describe('unsupported and malformed', () => {
    it.each([
      ['/CardManagement/ChangeUserPin', 'ChangeUserPin'],
      ['/PrintCard/print', 'PrintCard'],
      ['/eIDPM/x', 'eIDPM'],
      ['/MOEACA/sign', 'MOEACA'],
      ['/writecert', 'WriteCert'],
      ['/makeCsr', 'MakeCSR'],
      ['/getChallenge', 'GetChallenge'],
    ])('%s answers {"func":…,"ret_code":1979711502}', async (path, func) => {
      const reply = (await post(path, pageBody({ func }))).json<Json>();
      expect(reply).toMatchObject({ func, ret_code: 1979711502 });
    });

    it('GET of an unknown path uses the path as func', async () => {
      expect((await get('/writecert')).json()).toMatchObject({ func: 'writecert', ret_code: 0x7600000e });
      expect((await get('/sign')).json()).toMatchObject({ ret_code: 0x7600000e });
    });
  });

  describe('the bridge’s pages', () => {
    // The popups ChtICToken.js (eID build) opens for functions cardbridge does not offer.
    const VENDOR_POPUPS = ['/eIDPM/ChtPopupFormEIDPM', '/CardManagement/CMCPopForm', '/PrintCard/ChtPopupFormPrintCard', '/MOEACA/ChtPopupFormMOEACA'];

    it.each(VENDOR_POPUPS)('%s is a popup page that answers every func as unsupported (not JSON, so the library does not wait 170 s)', async (path) => {
      const answer = await get(path, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' });
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(answer.text).toContain('data-form="unsupported"');
      expect(answer.text).toContain('src="/hipki-ui/popup.js"');
    });

    it.each(['/popupForm', '/ChtPopupForm', ...VENDOR_POPUPS, '/selfTest.htm', '/addDomain?domain=www.example.com', '/hipki-ui/popup.js', '/hipki-ui/selftest.js', '/hipki-ui/adddomain.js', '/hipki-ui/style.css'])(
      '%s is served with a strict CSP and no framing',
      async (path) => {
        const answer = await get(path, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' });
        expect(answer.status).toBe(200);
        expect(answer.headers['content-security-policy']).toContain("frame-ancestors 'none'");
        expect(answer.headers['content-security-policy']).toContain("script-src 'self'");
        expect(answer.headers['content-security-policy']).not.toContain('unsafe-inline');
        expect(answer.headers['x-frame-options']).toBe('DENY');
        expect(answer.text).not.toMatch(/<script>|on(click|load)=/);
      },
    );

    it('/addDomain adds https://<host> only when the confirmation comes from the bridge’s own page', async () => {
      const body = 'domain=www.partner.example.com';
      const added = 'https://www.partner.example.com';
      for (const headers of [{}, { origin: SITE }, { origin: added }, { origin: own, 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-origin' }] as Array<Record<string, string>>) {
        const answer = await post('/addDomain', body, headers);
        expect(answer.status).toBe(403);
        expect(answer.json()).toMatchObject({ ret_code: 0x76000031 });
      }
      expect(sites.policy().allows(added)).toBe(false);
      expect((await post('/addDomain', 'domain=bad/host', { origin: own, 'sec-fetch-site': 'same-origin' })).json()).toMatchObject({ ret_code: 0x7600000c });
      expect((await post('/addDomain', body, { origin: own, 'sec-fetch-site': 'same-origin' })).json()).toEqual({ func: 'addDomain', ret_code: 0, last_error: 0, origin: added, added: true });
      // HiPKI only, as the official agent's whitelist: not the NHI listeners, not the native API
      expect(sites.policy('hipki').allows(added)).toBe(true);
      expect(sites.policy('nhi').allows(added)).toBe(false);
      expect(sites.policy('native').allows(added)).toBe(false);
      expect((await post('/addDomain', body, { origin: `http://127.0.0.1:${port}` })).json()).toMatchObject({ added: false });
      expect((await post('/sign', pageBody(signPkg({})), { origin: added })).json()).toMatchObject({ ret_code: 0 });
    });
  });

  it('selfTest.htm links to the full self-test page of the native listener', async () => {
    const page = await get('/selfTest.htm');
    expect(page.text).toContain('<a id="full-self-test" href="https://127.0.0.1:39443/">');
  });

  it('answers /v1/probe.gif to a plain <img> from any page: the client tells "certificate not trusted" from "not running" with it', async () => {
    const answer = await get('/v1/probe.gif');
    expect([answer.status, answer.headers['content-type'], answer.headers['cross-origin-resource-policy']]).toEqual([200, 'image/gif', 'cross-origin']);
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('never logs the PIN, the tbs or the tbsPackage', async () => {
    const secret = 'TOP-SECRET-TBS-CONTENT';
    await post('/sign', pageBody(signPkg({ tbs: secret })));
    await post('/sign', pageBody(signPkg({ tbs: secret, pin: '999999' })));
    await post('/decrypt', pageBody({ func: 'DecryptData', cipher: 'AA==', pin: PIN }));
    await get(`/sign?tbsPackage=${encodeURIComponent(JSON.stringify(signPkg({ tbs: secret })))}`);
    expect(logText).toContain('hipki request');
    for (const leak of [PIN, '999999', secret, 'tbsPackage']) expect(logText).not.toContain(leak);
  });
});
