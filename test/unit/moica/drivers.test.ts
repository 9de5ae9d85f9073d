import { constants, createHash, publicEncrypt, randomBytes, verify } from 'node:crypto';
import { jest } from '@jest/globals';
import type { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import type { MoicaCard, MoicaDriverOptions } from '../../../src/cards/moica/moica-card.js';
import { MoicaGen1Card } from '../../../src/cards/moica/moica-gen1.js';
import { MoicaGen2Card } from '../../../src/cards/moica/moica-gen2.js';
import { CardBridgeError } from '../../../src/errors.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { MOICA_GEN2_SELECT_APPLET } from '../../../src/cards/moica/commands.js';
import { Scp03Transport } from '../../../src/cards/moica/scp03-transport.js';
import { diversifyMoicaStaticKeys } from '../../../src/crypto/gp-diversify.js';
import type { CardTransport } from '../../../src/pcsc/transport.js';
import { READER, PIN, type Generation, plainVerifies, openMoicaCard, setup } from './helpers.js';
import { vectors } from '../crypto/vectors.js';

function withDriver<T>(registry: MockReaderRegistry, fn: (card: MoicaCard) => Promise<T>, exclusive = true, options: MoicaDriverOptions = {}): Promise<T> {
  return registry.withCard({ kind: 'moica', reader: READER, exclusive }, async (session) => fn(await openMoicaCard(session, options)));
}

/** Collects the driver's warnings instead of letting them reach the process. */
function warnings(): { options: MoicaDriverOptions; seen: Array<{ message: string; details: Record<string, unknown> }> } {
  const seen: Array<{ message: string; details: Record<string, unknown> }> = [];
  return { seen, options: { warn: (message, details) => seen.push({ message, details }) } };
}

const hexOf = (apdus: Buffer[]) => apdus.map((c) => c.toString('hex'));
/** Command headers (CLA INS P1 P2) as hex, in the order sent. */
const headers = (apdus: Buffer[]) => apdus.map((c) => c.subarray(0, 4).toString('hex'));

// The test PKI's RSA keys are generated once per process; on a busy machine that alone can
// take longer than one test's default timeout, so it happens here, not in the first test.
beforeAll(() => getTestPki(), 60_000);

describe.each([1, 2] as Generation[])('MOICA generation %i driver', (generation) => {
  it('is recognised and opened as its generation', async () => {
    const { registry } = await setup(generation);
    expect(registry.readers()[0]?.card?.type).toEqual({ kind: 'moica', generation });
    const driver = await withDriver(registry, async (card) => card, false);
    expect(driver).toBeInstanceOf(generation === 1 ? MoicaGen1Card : MoicaGen2Card);
  });

  const readBinaryCla = generation === 1 ? '80' : '00';

  it('reads serial number (Le 16) and version (Le 24, the size of 0905 on real cards)', async () => {
    const { registry, card } = await setup(generation, { serialNumber: 'TP12345678901234' });
    const info = await withDriver(registry, (c) => c.cardInfo(), false);
    expect(info).toEqual({ generation, serialNumber: 'TP12345678901234', version: card.version });
    expect(info.serialNumber).toMatch(/^[A-Z]{2}\d{14}$/);
    const reads = hexOf(card.received).filter((h) => h.slice(2, 4) === 'b0');
    expect(reads).toEqual([`${readBinaryCla}b0000010`, `${readBinaryCla}b0000018`]);
  });

  it('reads a shorter version file after 67 00 instead of failing', async () => {
    const { registry, card } = await setup(generation, { versionFileSize: 10 });
    const info = await withDriver(registry, (c) => c.cardInfo(), false);
    expect(info.version).toBe(card.version);
    // The over-long read was answered 67 00 and the driver read less, without an error.
    expect(card.received.filter((c) => c[1] === 0xb0).length).toBeGreaterThan(2);
  });

  it('lists the certificates the card holds, with key references from the PrKDF and keys checked through the PuKDF', async () => {
    const { registry, pki, card } = await setup(generation);
    const { seen, options } = warnings();
    const certs = await withDriver(registry, (c) => c.listCertificates(), false, options);
    expect(seen).toEqual([]);
    expect(certs.map((c) => c.id)).toEqual(['SIGN', 'KEYX', 'CACert', 'ROOTCACert']);
    expect(certs[0]!.der.equals(pki.sign.der)).toBe(true);
    expect(certs[1]!.der.equals(pki.encrypt.der)).toBe(true);
    expect(certs[2]!.der.equals(pki.issuing.der)).toBe(true);
    expect(certs[3]!.der.equals(pki.root.der)).toBe(true);
    expect(certs[0]!.keyReference).toBe(card.keyRefs.sign);
    expect(certs[1]!.keyReference).toBe(card.keyRefs.keyx);
    expect(certs[2]!.keyReference).toBeUndefined();
    expect(certs[0]!.publicKeyChecked).toBe(true);
    expect(certs[1]!.publicKeyChecked).toBe(true);
    expect(certs[0]!.facts.role).toBe('sign');
    expect(certs[1]!.facts.role).toBe('encrypt');
    expect(certs[0]!.facts.idLastFour).toBe('6789');
    expect(certs[0]!.keyUsage).toContain('nonRepudiation');
    expect(certs[1]!.keyUsage).toContain('decrypt');
  });

  it('still lists the certificates when a key record does not match: the certificate key wins, the mismatch is logged', async () => {
    const { registry, pki } = await setup(generation, { wrongPublicKeyRecord: true });
    const { seen, options } = warnings();
    const certs = await withDriver(registry, (c) => c.listCertificates(), false, options);
    expect(certs.map((c) => c.id)).toEqual(['SIGN', 'KEYX', 'CACert', 'ROOTCACert']);
    expect(certs[0]!.der.equals(pki.sign.der)).toBe(true);
    expect(certs[0]!.publicKeyChecked).toBe(false);
    expect(certs[1]!.publicKeyChecked).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.message).toMatch(/SIGN.*does not match.*certificate/);
    expect(seen[0]!.details).toMatchObject({ id: 'SIGN', generation });
    const unchecked = await withDriver(registry, (c) => c.listCertificates({ crossCheck: false }), false);
    expect(unchecked[0]!.publicKeyChecked).toBe(false);
  });

  it('without a warn option reports the mismatch as a process warning (never silently)', async () => {
    const { registry } = await setup(generation, { wrongPublicKeyRecord: true });
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const certs = await withDriver(registry, (c) => c.listCertificates(), false);
      expect(certs[0]!.publicKeyChecked).toBe(false);
      expect(emitWarning.mock.calls).toEqual([[expect.stringMatching(/SIGN.*does not match/), expect.objectContaining({ code: 'CARDBRIDGE_MOICA' })]]);
    } finally {
      emitWarning.mockRestore();
    }
  });

  it('finds the public keys through the PuKDF: key EF path and key reference from its entries', async () => {
    const { registry, pki, card } = await setup(generation);
    const entries = await withDriver(registry, (c) => c.listPublicKeys(), false);
    const root = generation === 1 ? '3f00' : '7fff';
    expect(entries.map((e) => ({ id: e.id, keyReference: e.keyReference, path: e.path.path.toString('hex') }))).toEqual([
      { id: 'SIGN', keyReference: card.publicKeyLocations.sign.ref, path: `${root}5030${card.publicKeyLocations.sign.fid.toString(16).padStart(4, '0')}` },
      { id: 'KEYX', keyReference: card.publicKeyLocations.keyx.ref, path: `${root}5030${card.publicKeyLocations.keyx.fid.toString(16).padStart(4, '0')}` },
    ]);
    // The model's PuKDF differs from the PrKDF on purpose (EF 0811, other references).
    expect(card.publicKeyLocations.sign.fid).toBe(0x0811);
    expect(card.publicKeyLocations.keyx.ref).not.toBe(card.keyRefs.keyx);
    const before = card.received.length;
    const modulus = await withDriver(registry, (c) => c.readPublicModulus(entries[0]!), false);
    expect(modulus.toString('base64url')).toBe(pki.sign.publicKey.export({ format: 'jwk' }).n);
    const sent = hexOf(card.received.slice(before));
    expect(sent.some((h) => h.endsWith('0811') || h.includes('02081100'))).toBe(true);
    const ref = card.publicKeyLocations.sign.ref;
    const recordReads = sent.filter((h) => h.slice(0, 4) === '80b2').map((h) => h.slice(4, 10));
    expect(recordReads).toEqual(
      generation === 1
        ? [`${(ref + 2).toString(16).padStart(2, '0')}0081`, `${(ref + 3).toString(16).padStart(2, '0')}0081`]
        : [`${ref.toString(16).padStart(2, '0')}0300`, `${ref.toString(16).padStart(2, '0')}0400`],
    );
  });

  it('lists the certificates of a card whose PuKDF is empty and ends in an error status, with the keys unchecked', async () => {
    for (const pastEndStatus of [0x6b00, 0x6a86, 0x6986, 0x6700]) {
      const { registry, pki } = await setup(generation, { emptyPukdf: true, directoryFileSize: 'exact', pastEndStatus });
      const { seen, options } = warnings();
      const certs = await withDriver(registry, (c) => c.listCertificates(), false, options);
      expect(certs.map((c) => c.id)).toEqual(['SIGN', 'KEYX', 'CACert', 'ROOTCACert']);
      expect(certs[0]!.der.equals(pki.sign.der)).toBe(true);
      expect(certs[0]!.keyReference).toBeDefined();
      expect(certs.map((c) => c.publicKeyChecked)).toEqual([false, false, false, false]);
      expect(seen.map((w) => w.message)).toEqual([expect.stringMatching(/no PuKDF entry.*SIGN/), expect.stringMatching(/no PuKDF entry.*KEYX/)]);
    }
  });

  it('reads directory files that end without padding (67 00 on the read that crosses the end)', async () => {
    const { registry, pki } = await setup(generation, { directoryFileSize: 'exact' });
    const certs = await withDriver(registry, (c) => c.listCertificates(), false);
    expect(certs.map((c) => c.id)).toEqual(['SIGN', 'KEYX', 'CACert', 'ROOTCACert']);
    expect(certs[3]!.der.equals(pki.root.der)).toBe(true);
    expect(certs.slice(0, 2).map((c) => c.publicKeyChecked)).toEqual([true, true]);
  });

  it('signs a digest with the SIGN key; the signature verifies against the certificate', async () => {
    const { registry, pki, card } = await setup(generation);
    const data = Buffer.from('cardbridge MOICA signing test');
    const digest = createHash('sha256').update(data).digest();
    const signature = await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', digest, PIN));
    expect(signature).toHaveLength(256);
    expect(verify('sha256', data, pki.sign.publicKey, signature)).toBe(true);
    expect(verify('sha256', Buffer.from('other data'), pki.sign.publicKey, signature)).toBe(false);
    expect(plainVerifies(card.received)).toEqual([]);
    expect(card.plainVerifyCount).toBe(0);
    // 80 EA 02 returns at most 128 bytes: the rest always comes through C1 (00 80, 80 bytes).
    const c1 = hexOf(card.received).filter((h) => h.slice(2, 4) === 'c1');
    expect(c1).toHaveLength(1);
    expect(c1[0]!.slice(0, 8)).toBe(`${generation === 1 ? '80' : '84'}c10080`);
    expect(c1[0]!.slice(-2)).toBe('80');
  });

  it('decrypts what was encrypted to the KEYX certificate', async () => {
    const { registry, pki, card } = await setup(generation);
    const secret = randomBytes(32);
    const cipher = publicEncrypt({ key: pki.encrypt.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
    const plain = await withDriver(registry, (c) => c.decrypt(card.keyRefs.keyx, cipher, PIN));
    expect(plain.equals(secret)).toBe(true);
  });

  it('counts wrong PINs down, then accepts the right one', async () => {
    const { registry, card } = await setup(generation);
    await expect(withDriver(registry, (c) => c.verifyPin('000000'))).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 2 });
    await expect(withDriver(registry, (c) => c.verifyPin('111111'))).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 1 });
    expect(card.triesLeft).toBe(1);
    await withDriver(registry, (c) => c.verifyPin(PIN));
    expect(card.triesLeft).toBe(3);
    expect(plainVerifies(card.received)).toEqual([]);
  });

  it('reports a blocked card with the unblock hint and never unblocks it with the right PIN', async () => {
    const { registry, card } = await setup(generation);
    for (const triesLeft of [2, 1]) {
      await expect(withDriver(registry, (c) => c.verifyPin('000000'))).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft });
    }
    const last = await withDriver(registry, (c) => c.verifyPin('000000')).catch((e: unknown) => e);
    expect(last).toMatchObject({ code: 'PinBlocked', triesLeft: 0 });
    const blocked = await withDriver(registry, (c) => c.verifyPin(PIN)).catch((e: unknown) => e);
    expect(blocked).toBeInstanceOf(CardBridgeError);
    expect(blocked).toMatchObject({ code: 'PinBlocked', sw: 0x6983 });
    expect((blocked as CardBridgeError).hint).toMatch(/unblock.*MOICA CA web site.*用戶代碼/);
    const sign = await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', Buffer.alloc(32), PIN)).catch((e: unknown) => e);
    expect(sign).toMatchObject({ code: 'PinBlocked' });
    expect(card.pinVerified).toBe(false);
  });

  it.each(['12345', '123456789', 'abcdef', '12345a', '', ' 123456'])('rejects PIN %p as PinLength without sending an APDU', async (pin) => {
    const { registry, card } = await setup(generation);
    await withDriver(registry, async (c) => {
      const before = card.received.length;
      await expect(c.verifyPin(pin)).rejects.toMatchObject({ code: 'PinLength' });
      await expect(c.signDigest(card.keyRefs.sign, 'sha256', Buffer.alloc(32), pin)).rejects.toMatchObject({ code: 'PinLength' });
      await expect(c.decrypt(card.keyRefs.keyx, Buffer.alloc(256), pin)).rejects.toMatchObject({ code: 'PinLength' });
      expect(card.received.length).toBe(before);
    });
    expect(card.triesLeft).toBe(3);
  });

  it('accepts 8-digit PINs', async () => {
    const { registry } = await setup(generation, { pin: '12345678' });
    await expect(withDriver(registry, (c) => c.verifyPin('12345678'))).resolves.toBeUndefined();
  });

  it('loses the verified state on reset', async () => {
    const { registry, card } = await setup(generation);
    await withDriver(registry, async (c) => {
      await c.verifyPin(PIN);
      expect(card.pinVerified).toBe(true);
    });
    // the registry resets the card after an exclusive operation
    expect(card.pinVerified).toBe(false);
    expect(card.resets).toBeGreaterThan(0);
  });

  it('refuses a private-key operation that was not preceded by VERIFY', async () => {
    const { card } = await setup(generation);
    const selects =
      generation === 1
        ? ['80a40000023f00', '80a4000002' + '5030', '80a4000002' + '0810']
        : ['00a4040c10a0000002830000062201696400010101' + '00', '00a4000402503000', '00a4000402081000'];
    for (const apdu of selects) expect((await card.process(Buffer.from(apdu, 'hex'))).subarray(-2).toString('hex')).toBe('9000');
    const firstHalf = Buffer.concat([Buffer.from([0x80, 0xea, 0x82, card.keyRefs.sign, 0x80]), Buffer.alloc(128, 1)]);
    expect((await card.process(firstHalf)).toString('hex')).toBe('6982');
  });

  it('costs a try and refuses a plain VERIFY (so the driver must never send one)', async () => {
    const { card } = await setup(generation);
    const plain = Buffer.concat([Buffer.from('0020000110', 'hex').subarray(0, 4), Buffer.from([10]), Buffer.from('313233343536ffffffff', 'hex')]);
    const response = await card.process(plain);
    expect(response.toString('hex')).toBe('63c2');
    expect(card.triesLeft).toBe(2);
    expect(card.pinVerified).toBe(false);
  });
});

describe('MOICA generation 1 specifics', () => {
  it('sends no second VERIFY under the other batch key after 6A 88, and says why', async () => {
    const { registry, card } = await setup(1, { pinKeyBatch: 'alt' });
    const error = await withDriver(registry, (c) => c.verifyPin(PIN)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CardBridgeError);
    expect(error).toMatchObject({ code: 'UnsupportedCard', sw: 0x6a88, stage: 'pin-protection-key' });
    expect((error as CardBridgeError).message).toMatch(/6A 88.*PIN protection key.*not sent again/);
    expect((error as CardBridgeError).hint).toMatch(/may have cost a PIN try/);
    expect(card.received.filter((c) => c[0] === 0x8c && c[1] === 0x20)).toHaveLength(1);
    // Signing stops at the same point: one VERIFY, no private-key operation.
    const sign = await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', Buffer.alloc(32), PIN)).catch((e: unknown) => e);
    expect(sign).toMatchObject({ code: 'UnsupportedCard', sw: 0x6a88 });
    expect(card.received.filter((c) => c[0] === 0x8c && c[1] === 0x20)).toHaveLength(2);
    expect(card.received.some((c) => c[1] === 0xea)).toBe(false);
  });

  it('does not check byte 0 of a key record (the verified module does not either)', async () => {
    const { registry } = await setup(1, { recordFirstByte: 0x00 });
    const { seen, options } = warnings();
    const certs = await withDriver(registry, (c) => c.listCertificates(), false, options);
    expect(certs.slice(0, 2).map((c) => c.publicKeyChecked)).toEqual([true, true]);
    expect(seen).toEqual([]);
  });

  it('reads in 16-byte chunks after a 69 87', async () => {
    const { registry, pki, card } = await setup(1, { maxReadLength: 0x10 });
    const certs = await withDriver(registry, (c) => c.listCertificates(), false);
    expect(certs[0]!.der.equals(pki.sign.der)).toBe(true);
    const reads = card.received.filter((c) => c[1] === 0xb0);
    expect(reads.filter((c) => c[4] === 0x10).length).toBeGreaterThan(100);
  });

  it('fetches the rest of a result with 80 C1 when 80 EA 02 returns only part', async () => {
    const { registry, pki, card } = await setup(1, { firstResultLength: 0x10 });
    const digest = createHash('sha256').update('x').digest();
    const signature = await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', digest, PIN));
    expect(verify('sha256', Buffer.from('x'), pki.sign.publicKey, signature)).toBe(true);
    const fetches = card.received.filter((c) => c[0] === 0x80 && c[1] === 0xc1);
    expect(fetches.length).toBe(2); // 240 bytes missing: 0x80 + 0x70
  });

  it('sends exactly the protected VERIFY of the spec vector', async () => {
    const { registry, card } = await setup(1);
    const iv = Buffer.from('0102030405060708', 'hex');
    await registry.withCard({ kind: 'moica', exclusive: true }, async (session) => {
      const driver = await openMoicaCard(session, { random: (n) => iv.subarray(0, n) });
      await driver.verifyPin(PIN);
    });
    const verifyApdu = card.received.find((c) => c[0] === 0x8c);
    expect(verifyApdu?.toString('hex')).toBe('8c2000012001020304050607' + '08c16704c1f5f9d07c32d8f912da7ba90fc7f23bd10fd4f833');
  });

  it.each(vectors.gen1_protected_verify_real_card.map((v) => [v.pin, v] as const))(
    'sends the protected VERIFY recorded from a real card (PIN %s), which the model accepts',
    async (pin, v) => {
      const { registry, card } = await setup(1, { pin });
      await registry.withCard({ kind: 'moica', exclusive: true }, async (session) => {
        const driver = await openMoicaCard(session, { random: (n) => Buffer.from(v.iv, 'hex').subarray(0, n) });
        await driver.verifyPin(pin);
        expect(card.pinVerified).toBe(true);
      });
      expect(card.received.find((c) => c[0] === 0x8c)?.toString('hex')).toBe(v.apdu);
    },
  );
});

describe('MOICA generation 2 specifics', () => {
  it('sends the SCP03-wrapped VERIFY recorded from a real card (static keys diversified from its card id)', async () => {
    const v = vectors.gen2_scp03_verify_wrap_real_card[0]!;
    const keys = vectors.gen2_diversified_keys_real_card[0]!;
    expect([v.k_enc, v.k_mac]).toEqual([keys.k_enc, keys.k_mac]);
    const { registry, card } = await setup(2, {
      cardId: Buffer.from(keys.card_id, 'hex'),
      pin: v.pin,
      random: () => Buffer.from(v.card_challenge, 'hex'),
    });
    await registry.withCard({ kind: 'moica', exclusive: true }, async (session) => {
      const driver = await openMoicaCard(session, { random: () => Buffer.from(v.host_challenge, 'hex') });
      await driver.verifyPin(v.pin);
      expect(card.pinVerified).toBe(true);
    });
    const verifyApdu = card.received.find((c) => c[0] === 0x04 && c[1] === 0x20);
    expect(verifyApdu?.toString('hex')).toBe(v.wrapped_header + v.wrapped_data_and_mac);
  });

  it('sends the recorded SCP03-wrapped VERIFY of the spec vector', async () => {
    const pki = await getTestPki();
    const { registry, card } = await setup(2, {
      cardId: Buffer.from('24056964130001903957', 'hex'),
      pin: '000000',
      random: () => Buffer.from('0361bb15a8b68c2e', 'hex'),
    });
    expect(pki).toBeDefined();
    await registry.withCard({ kind: 'moica', exclusive: true }, async (session) => {
      const driver = await openMoicaCard(session, { random: () => Buffer.from('d405ec4cdc43cf8d', 'hex') });
      await driver.verifyPin('000000');
    });
    const verifyApdu = card.received.find((c) => c[0] === 0x04 && c[1] === 0x20);
    expect(verifyApdu?.toString('hex')).toBe('0420000118' + 'c5b3be9f583a7eedc0a311124389a497e6eb3952a40bc30d');
  });

  it('runs VERIFY and the private operation only inside the secure channel', async () => {
    const { registry, card } = await setup(2);
    await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', Buffer.alloc(32, 7), PIN));
    const sent = headers(card.received);
    const ea = sent.filter((h) => h.slice(2, 4) === 'ea');
    expect(ea).toEqual([`84ea82${card.keyRefs.sign.toString(16).padStart(2, '0')}`, `84ea02${card.keyRefs.sign.toString(16).padStart(2, '0')}`]);
    expect(sent).toContain('84c10080');
    expect(sent).toContain('04200001');
    expect(sent.filter((h) => h === '04a40004')).toHaveLength(2);
    expect(sent.indexOf('80500100')).toBeLessThan(sent.indexOf('84820300'));
  });

  it('sends SM SELECT and 84 EA 82 without Le, 84 EA 02 and 84 C1 with Le 80 (spec corrections)', async () => {
    const { registry, card } = await setup(2);
    await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', Buffer.alloc(32, 7), PIN));
    const secured = card.received.filter((c) => c[0] === 0x04 || c[0] === 0x84);
    // SM SELECT: 04 A4 00 04 18 ‖ 16 bytes ciphertext ‖ 8 bytes MAC, nothing after.
    const selects = secured.filter((c) => c[1] === 0xa4);
    expect(selects.map((c) => [c[4], c.length])).toEqual([
      [0x18, 5 + 0x18],
      [0x18, 5 + 0x18],
    ]);
    // 128 bytes + 80 00.. padding = 144 encrypted, + 8 MAC = 0x98.
    const first = secured.find((c) => c[1] === 0xea && c[2] === 0x82)!;
    expect([first[4], first.length]).toEqual([0x98, 5 + 0x98]);
    const last = secured.find((c) => c[1] === 0xea && c[2] === 0x02)!;
    expect([last[4], last.length, last[last.length - 1]]).toEqual([0x98, 5 + 0x98 + 1, 0x80]);
    const c1 = secured.find((c) => c[1] === 0xc1)!;
    expect([c1[4], c1.length, c1[c1.length - 1]]).toEqual([0x08, 5 + 8 + 1, 0x80]);
  });

  it('accepts a GET DATA 45 answer longer than 12 bytes, taking the 10-byte card id', async () => {
    const { registry, card, pki } = await setup(2, { cardIdTrailer: Buffer.from('9f6501ff', 'hex') });
    const digest = createHash('sha256').update('y').digest();
    const signature = await withDriver(registry, (c) => c.signDigest(card.keyRefs.sign, 'sha256', digest, PIN));
    expect(verify('sha256', Buffer.from('y'), pki.sign.publicKey, signature)).toBe(true);
  });

  it('rejects a secured command with a bad MAC, spends no try and closes the channel', async () => {
    const { registry, card } = await setup(2);
    await registry.withCard({ kind: 'moica', exclusive: true }, async (session) => {
      expect((await session.transmit(MOICA_GEN2_SELECT_APPLET)).sw).toBe(0x9000);
      const tamper: CardTransport = {
        transmit: (command) => {
          if (command.ins !== 0x20 || !command.data) return session.transmit(command);
          const data = Buffer.from(command.data);
          data[data.length - 1]! ^= 0x01;
          return session.transmit({ ...command, data });
        },
      };
      const channel = new Scp03Transport(tamper, diversifyMoicaStaticKeys(card.cardId));
      await channel.open();
      expect(card.secureChannelOpen).toBe(true);
      const response = await channel.transmit({ cla: 0, ins: 0x20, p1: 0, p2: 1, data: Buffer.from('313233343536ffffffff', 'hex') });
      expect(response.sw).toBe(0x6982);
      expect(card.secureChannelOpen).toBe(false);
      expect(card.pinVerified).toBe(false);
    });
    expect(card.triesLeft).toBe(3);
  });

  it('sends no PIN to a card that cannot prove the secure-channel keys', async () => {
    const { registry, card } = await setup(2);
    const error = await registry
      .withCard({ kind: 'moica', exclusive: true }, async (session) => {
        await session.transmit(MOICA_GEN2_SELECT_APPLET);
        const channel = new Scp03Transport(session, diversifyMoicaStaticKeys(Buffer.alloc(10, 0x42)));
        await channel.open();
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ProtocolError' });
    expect(card.received.some((c) => c[1] === 0x20 || c[1] === 0x82)).toBe(false);
  });
});
