import { execFileSync } from 'node:child_process';
import { constants, createHash, publicDecrypt, publicEncrypt, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { createCmsSignedData } from '../../../src/crypto/cms.js';
import { getTestPki, type MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import { READER, PIN, type Generation, instrumented, plainVerifies, setup } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moica-cms-'));
  // The test PKI's RSA keys are generated once per process; under load that alone can exceed
  // the first test's default timeout, so it happens here.
  await getTestPki();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl cms -verify` against the test root + issuing CA; returns the verified content. */
function opensslVerify(pki: MoicaTestPki, cms: Buffer, detachedContent?: Buffer): Buffer {
  const name = randomBytes(6).toString('hex');
  const ca = join(dir, `${name}-ca.pem`);
  const input = join(dir, `${name}.p7s`);
  writeFileSync(ca, pki.caBundlePem);
  writeFileSync(input, cms);
  const args = ['cms', '-verify', '-CAfile', ca, '-in', input, '-inform', 'DER'];
  if (detachedContent) {
    const content = join(dir, `${name}.bin`);
    writeFileSync(content, detachedContent);
    args.push('-content', content, '-binary');
  }
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.each([1, 2] as Generation[])('MOICA service on a generation %i card', (generation) => {
  it('reports card information and certificates', async () => {
    const { registry, pki } = await setup(generation);
    const service = new MoicaService(registry);
    const info = await service.cardInfo();
    expect(info).toMatchObject({ generation, reader: READER, serialNumber: 'TP03000012345678' });
    const certs = await service.listCertificates();
    expect(certs.find((c) => c.id === 'SIGN')?.der.equals(pki.sign.der)).toBe(true);
  });

  it('signs PKCS#1 over data and over a digest', async () => {
    const { registry, pki, card } = await setup(generation);
    const service = new MoicaService(registry);
    const data = Buffer.from('login challenge 42');
    const fromData = await service.sign({ data, format: 'pkcs1' }, PIN);
    expect(verify('sha256', data, pki.sign.publicKey, fromData.signature)).toBe(true);
    expect(fromData.certificate.equals(pki.sign.der)).toBe(true);
    const fromDigest = await service.sign({ digest: createHash('sha512').update(data).digest(), hash: 'sha512' }, PIN);
    expect(verify('sha512', data, pki.sign.publicKey, fromDigest.signature)).toBe(true);
    expect(plainVerifies(card.received)).toEqual([]);
  });

  it('signs raw data with type-1 padding and no DigestInfo', async () => {
    const { registry, pki } = await setup(generation);
    const service = new MoicaService(registry);
    const payload = Buffer.from('0123456789abcdef0123456789abcdef0123', 'latin1');
    const { signature } = await service.sign({ data: payload, format: 'raw' }, PIN);
    // public-key "decryption" with PKCS#1 padding undoes type-1 padding: exactly the payload
    expect(publicDecrypt({ key: pki.sign.publicKey, padding: constants.RSA_PKCS1_PADDING }, signature).equals(payload)).toBe(true);
    await expect(service.sign({ data: Buffer.alloc(246), format: 'raw' }, PIN)).rejects.toMatchObject({ code: 'InvalidInput' });
  });

  it('makes attached CMS that openssl verifies against the test CA', async () => {
    const { registry, pki } = await setup(generation);
    const service = new MoicaService(registry);
    const data = Buffer.from('合約內容: attached CMS test');
    const { signature } = await service.sign({ data, format: 'cms' }, PIN);
    expect(opensslVerify(pki, signature).equals(data)).toBe(true);
    const parsed = pkijs.SignedData.fromBER(pkijs.ContentInfo.fromBER(signature).content.toBER());
    const attrs = parsed.signerInfos[0]!.signedAttrs!.attributes.map((a) => a.type).sort();
    expect(attrs).toEqual(['1.2.840.113549.1.9.3', '1.2.840.113549.1.9.4', '1.2.840.113549.1.9.5']);
    expect(parsed.certificates).toHaveLength(3);
  });

  it('makes detached CMS from data or from a digest, without signingTime if asked', async () => {
    const { registry, pki } = await setup(generation);
    const service = new MoicaService(registry);
    const data = randomBytes(1000);
    const detached = await service.sign({ data, format: 'cms', detached: true }, PIN);
    opensslVerify(pki, detached.signature, data);
    const fromDigest = await service.sign({ digest: createHash('sha256').update(data).digest(), format: 'cms', signingTime: false, includeChain: false }, PIN);
    opensslVerify(pki, fromDigest.signature, data);
    const parsed = pkijs.SignedData.fromBER(pkijs.ContentInfo.fromBER(fromDigest.signature).content.toBER());
    expect(parsed.signerInfos[0]!.signedAttrs!.attributes.map((a) => a.type)).not.toContain('1.2.840.113549.1.9.5');
    expect(parsed.encapContentInfo.eContent).toBeUndefined();
    // the wrong content must not verify
    expect(() => opensslVerify(pki, detached.signature, Buffer.concat([data, Buffer.from([0])]))).toThrow();
  });

  it('decrypts with the KEYX key', async () => {
    const { registry, pki } = await setup(generation);
    const service = new MoicaService(registry);
    const secret = Buffer.from('session key 0123456789');
    const plain = await service.decrypt(publicEncrypt({ key: pki.encrypt.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret), PIN);
    expect(plain.equals(secret)).toBe(true);
    // A ciphertext for another key fails without saying why: one below the modulus fails the
    // padding check after the card's operation, one at or above it is refused before; both
    // must look the same. (Random padding: pick one below the modulus, as half of them are.)
    const modulus = Buffer.from(pki.encrypt.publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const candidates = Array.from({ length: 64 }, () => publicEncrypt({ key: pki.sign.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret));
    const below = candidates.find((c) => Buffer.compare(c, modulus) < 0);
    expect(below).toBeDefined();
    await expect(service.decrypt(below!, PIN)).rejects.toMatchObject({ code: 'ProtocolError', message: 'Decryption failed' });
    await expect(service.decrypt(Buffer.alloc(256, 0xff), PIN)).rejects.toMatchObject({ code: 'ProtocolError', message: 'Decryption failed' });
  });

  it('answers the tries count (which cardbridge’s window asks for every second) from memory, not the card', async () => {
    const { registry, card } = await setup(generation);
    const service = new MoicaService(registry);
    await service.pinStatus();
    const before = card.received.length;
    await service.pinStatus();
    await service.pinStatus();
    expect(card.received.length).toBe(before);
  });

  it('checks the PIN format before touching the card', async () => {
    const { registry, card } = await setup(generation);
    const service = new MoicaService(registry);
    const before = card.received.length;
    for (const pin of ['12345', '123456789', 'abcdef']) {
      await expect(service.sign({ data: Buffer.from('x') }, pin)).rejects.toMatchObject({ code: 'PinLength' });
      await expect(service.decrypt(Buffer.alloc(256), pin)).rejects.toMatchObject({ code: 'PinLength' });
    }
    expect(card.received.length).toBe(before);
  });

  it('reports tries left and the blocked card through the service', async () => {
    const { registry } = await setup(generation);
    const service = new MoicaService(registry);
    await expect(service.sign({ data: Buffer.from('x') }, '654321')).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 2 });
    await expect(service.sign({ data: Buffer.from('x') }, '654321')).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 1 });
    // the last try is spent only with the caller's confirmation (test/unit/pin/moica-pin-guard.test.ts)
    await expect(service.sign({ data: Buffer.from('x') }, PIN, { confirmLastTry: true })).resolves.toMatchObject({ format: 'pkcs1' });
    const { registry: blockedRegistry } = await setup(generation, { triesLeft: 0 });
    const error = await new MoicaService(blockedRegistry).sign({ data: Buffer.from('x') }, PIN).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PinBlocked', hint: expect.stringMatching(/用戶代碼/) });
  });

  it('reports CardRemoved when the card is pulled out mid-signature, then works again', async () => {
    const { registry, pki, card } = await setup(generation);
    const service = new MoicaService(registry);
    let armed = true;
    const flaky = instrumented(card, (command) => {
      // the first half of the private-key operation (80/84 EA 82)
      if (armed && command[1] === 0xea && command[2] === 0x82) {
        armed = false;
        registry.removeCard(READER);
      }
    });
    registry.removeCard(READER);
    await registry.insertCard(READER, flaky);
    await expect(service.sign({ data: Buffer.from('x') }, PIN)).rejects.toMatchObject({ code: 'CardRemoved' });
    expect(armed).toBe(false);
    card.reset();
    await registry.insertCard(READER, flaky);
    const { signature } = await service.sign({ data: Buffer.from('x') }, PIN);
    expect(verify('sha256', Buffer.from('x'), pki.sign.publicKey, signature)).toBe(true);
  });

  it('holds the card exclusively for PIN operations and resets it afterwards', async () => {
    const { registry, card } = await setup(generation);
    const service = new MoicaService(registry);
    const resets = card.resets;
    await service.sign({ data: Buffer.from('x') }, PIN);
    expect(card.resets).toBe(resets + 1);
    expect(card.pinVerified).toBe(false);
    const release = registry.holdExclusively(READER);
    await expect(service.sign({ data: Buffer.from('x') }, PIN)).rejects.toMatchObject({ code: 'Busy' });
    release();
  });

  it('never sends a plain VERIFY, whatever the operation or outcome', async () => {
    const { registry, pki, card } = await setup(generation);
    const service = new MoicaService(registry);
    await service.cardInfo();
    await service.listCertificates();
    await expect(service.sign({ data: Buffer.from('x') }, '000000')).rejects.toMatchObject({ code: 'PinIncorrect' });
    for (const format of ['pkcs1', 'cms', 'raw'] as const) await service.sign({ data: Buffer.from('x'), format }, PIN);
    await service.decrypt(publicEncrypt({ key: pki.encrypt.publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from('k')), PIN);
    for (let i = 0; i < 4; i++) await service.decrypt(Buffer.alloc(256, 1), '000000', {}, { confirmLastTry: true }).catch(() => undefined);
    expect(card.triesLeft).toBe(0);
    expect(card.received.length).toBeGreaterThan(50);
    expect(plainVerifies(card.received)).toEqual([]);
    expect(card.plainVerifyCount).toBe(0);
  });

  it('refuses a non-MOICA card as WrongCard', async () => {
    const { registry } = await setup(generation);
    registry.removeCard(READER);
    const { GenericTestCard } = await import('../../../src/emulator/test-card.js');
    await registry.insertCard(READER, new GenericTestCard());
    await expect(new MoicaService(registry).cardInfo()).rejects.toMatchObject({ code: 'WrongCard' });
  });
});

describe('CMS builder', () => {
  it('refuses an attached signature without content and mismatched digests', async () => {
    const pki = await getTestPki();
    const sign = async () => Buffer.alloc(256);
    await expect(createCmsSignedData({ digest: Buffer.alloc(32), detached: false, signerCertificate: pki.sign.der, sign })).rejects.toMatchObject({ code: 'InvalidInput' });
    await expect(createCmsSignedData({ content: Buffer.from('a'), digest: Buffer.alloc(32), signerCertificate: pki.sign.der, sign })).rejects.toMatchObject({ code: 'InvalidInput' });
    await expect(createCmsSignedData({ content: Buffer.from('a'), signerCertificate: Buffer.from('nope'), sign })).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});
