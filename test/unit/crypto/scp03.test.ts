import { aesCbcDecrypt } from '../../../src/crypto/aes.js';
import { aesCmac } from '../../../src/crypto/aes-cmac.js';
import { moicaPinBuffer } from '../../../src/crypto/moica-pin-block.js';
import {
  SCP03_SECURITY_LEVEL,
  Scp03Session,
  deriveScp03SessionKeys,
  scp03CardCryptogram,
  scp03CommandIv,
  scp03KdfInput,
} from '../../../src/crypto/scp03.js';
import { isCardBridgeError } from '../../../src/errors.js';
import { hex, vectors } from './vectors.js';

type Vector = (typeof vectors.gen2_scp03_verify_wrap)[number];

function keysOf(v: Vector) {
  return { kEnc: hex(v.k_enc), kMac: hex(v.k_mac) };
}

/** KDF block written out from the spec text, independent of scp03KdfInput. */
function specKdf(key: Buffer, constant: number, lengthBits: number, context: Buffer): Buffer {
  const block = Buffer.concat([Buffer.alloc(11), Buffer.from([constant, 0x00, lengthBits >> 8, lengthBits & 0xff, 0x01]), context]);
  return aesCmac(key, block).subarray(0, lengthBits / 8);
}

/** A session that has checked the card cryptogram and built EXTERNAL AUTHENTICATE. */
function openSession(v: Vector, level: number = SCP03_SECURITY_LEVEL.cMacCDec): Scp03Session {
  const session = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
  const { sMac } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
  session.verifyCardCryptogram(scp03CardCryptogram(sMac, hex(v.host_challenge), hex(v.card_challenge)));
  session.externalAuthenticateMac(level);
  return session;
}

function expectCode(fn: () => unknown, code: 'InvalidInput' | 'ProtocolError'): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isCardBridgeError(thrown, code)).toBe(true);
}

const VERIFY = { cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01 };

describe('SCP03', () => {
  describe.each(vectors.gen2_scp03_verify_wrap.map((v) => [v.host_challenge, v] as const))('vector (host challenge %s)', (_h, v) => {
    it('wraps SM VERIFY after EXTERNAL AUTHENTICATE to the recorded bytes', () => {
      const session = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      const context = Buffer.concat([hex(v.host_challenge), hex(v.card_challenge)]);
      const sMac = specKdf(hex(v.k_mac), 0x06, 128, context);
      session.verifyCardCryptogram(specKdf(sMac, 0x00, 64, context));

      const ea = session.externalAuthenticateMac();
      expect([ea.cla, ea.ins, ea.p1, ea.p2]).toEqual([0x84, 0x82, 0x03, 0x00]);
      expect(ea.data).toHaveLength(0x10);
      expect(ea.data.subarray(0, 8)).toEqual(specKdf(sMac, 0x01, 64, context));
      expect(session.encryptionCounter).toBe(0);

      const wrapped = session.wrap({ ...VERIFY, data: moicaPinBuffer('000000') });
      const header = Buffer.from([wrapped.cla, wrapped.ins, wrapped.p1, wrapped.p2, wrapped.data.length]);
      expect(header.toString('hex')).toBe(v.wrapped_header);
      expect(wrapped.data.toString('hex')).toBe(v.wrapped_data_and_mac);
      expect(session.encryptionCounter).toBe(1);
    });

    it('encrypts VERIFY data with the counter-1 IV and 80 00.. padding', () => {
      const session = openSession(v);
      const { sEnc } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      const wrapped = session.wrap({ ...VERIFY, data: moicaPinBuffer('000000') });
      const plain = aesCbcDecrypt(sEnc, scp03CommandIv(sEnc, 1), wrapped.data.subarray(0, 16));
      expect(plain.toString('hex')).toBe('303030303030ffffffff800000000000');
    });

    it('derives S-ENC and S-MAC with the spec KDF', () => {
      const context = Buffer.concat([hex(v.host_challenge), hex(v.card_challenge)]);
      const keys = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      expect(keys.sEnc).toEqual(specKdf(hex(v.k_enc), 0x04, 128, context));
      expect(keys.sMac).toEqual(specKdf(hex(v.k_mac), 0x06, 128, context));
      expect(scp03KdfInput(0x04, 128, 1, context).subarray(0, 16).toString('hex')).toBe('00000000000000000000000400008001');
    });

    it('refuses a tampered card cryptogram with ProtocolError and closes the session', () => {
      const session = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      const { sMac } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      const good = scp03CardCryptogram(sMac, hex(v.host_challenge), hex(v.card_challenge));
      for (let bit = 0; bit < 64; bit += 21) {
        const tampered = Buffer.from(good);
        tampered[bit >> 3] = (tampered[bit >> 3] as number) ^ (1 << (bit & 7));
        const fresh = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
        expectCode(() => fresh.verifyCardCryptogram(tampered), 'ProtocolError');
        expectCode(() => fresh.externalAuthenticateMac(), 'InvalidInput');
      }
      expectCode(() => session.verifyCardCryptogram(good.subarray(0, 7)), 'InvalidInput');
      session.verifyCardCryptogram(good);
    });

    it('a different card challenge gives a different cryptogram', () => {
      const otherCard = Buffer.from(hex(v.card_challenge)).fill(0x11, 0, 1);
      const session = new Scp03Session(keysOf(v), hex(v.host_challenge), otherCard);
      const { sMac } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      expectCode(
        () => session.verifyCardCryptogram(scp03CardCryptogram(sMac, hex(v.host_challenge), hex(v.card_challenge))),
        'ProtocolError',
      );
    });

    it('enforces the order: verify card, then EXTERNAL AUTHENTICATE, then wrap', () => {
      const session = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      expectCode(() => session.externalAuthenticateMac(), 'InvalidInput');
      expectCode(() => session.wrap({ ...VERIFY, data: moicaPinBuffer('000000') }), 'InvalidInput');
      const open = openSession(v);
      expectCode(() => open.externalAuthenticateMac(), 'InvalidInput');
      open.destroy();
      expectCode(() => open.wrap({ ...VERIFY, data: moicaPinBuffer('000000') }), 'InvalidInput');
    });

    it('MACs a data-less command without touching the counter, and chains the MCV', () => {
      const a = openSession(v);
      const b = openSession(v);
      const getResponse = { cla: 0x80, ins: 0xc1, p1: 0x00, p2: 0x80 };
      const first = a.wrap(getResponse);
      expect([first.cla, first.ins, first.p1, first.p2]).toEqual([0x84, 0xc1, 0x00, 0x80]);
      expect(first.data).toHaveLength(8);
      expect(a.encryptionCounter).toBe(0);
      // Same command again: only the chained MCV differs, so the MAC must change.
      expect(a.wrap(getResponse).data).not.toEqual(first.data);
      // And an identical history gives identical output.
      expect(b.wrap(getResponse)).toEqual(first);

      const select = a.wrap({ cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x04, data: hex('5030') });
      expect(a.encryptionCounter).toBe(1);
      expect(select.data).toHaveLength(16 + 8);
      const second = a.wrap({ cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x04, data: hex('0810') });
      expect(a.encryptionCounter).toBe(2);
      const { sEnc } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      expect(aesCbcDecrypt(sEnc, scp03CommandIv(sEnc, 2), second.data.subarray(0, 16)).toString('hex')).toBe(
        '0810800000000000' + '0000000000000000',
      );
    });

    it('wraps 128-byte blocks within a short APDU and refuses data that would not fit', () => {
      const session = openSession(v);
      const wrapped = session.wrap({ cla: 0x80, ins: 0xea, p1: 0x82, p2: 0x01, data: Buffer.alloc(128, 0x5a) });
      expect(wrapped.cla).toBe(0x84);
      expect(wrapped.data).toHaveLength(144 + 8);
      expectCode(() => session.wrap({ cla: 0x80, ins: 0xea, p1: 0x82, p2: 0x01, data: Buffer.alloc(240) }), 'InvalidInput');
    });

    it('at security level 1 sends data in clear with a C-MAC', () => {
      const session = openSession(v, SCP03_SECURITY_LEVEL.cMac);
      const wrapped = session.wrap({ ...VERIFY, data: moicaPinBuffer('000000') });
      expect(wrapped.data.subarray(0, 10)).toEqual(moicaPinBuffer('000000'));
      expect(wrapped.data).toHaveLength(18);
      expect(session.encryptionCounter).toBe(0);
    });

    it('rejects security levels with R-MAC / R-ENC', () => {
      const session = new Scp03Session(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      const { sMac } = deriveScp03SessionKeys(keysOf(v), hex(v.host_challenge), hex(v.card_challenge));
      session.verifyCardCryptogram(scp03CardCryptogram(sMac, hex(v.host_challenge), hex(v.card_challenge)));
      expectCode(() => session.externalAuthenticateMac(0x33), 'InvalidInput');
    });
  });

  it.each(vectors.gen2_scp03_verify_wrap_real_card.map((v) => [v.host_challenge, v] as const))(
    'real-card known answer: SM VERIFY wrapped under host challenge %s',
    (_h, v) => {
      // Only the facts the spec states: the static keys, both challenges, counter 1, the PIN.
      const session = new Scp03Session({ kEnc: hex(v.k_enc), kMac: hex(v.k_mac) }, hex(v.host_challenge), hex(v.card_challenge));
      const { sMac } = deriveScp03SessionKeys({ kEnc: hex(v.k_enc), kMac: hex(v.k_mac) }, hex(v.host_challenge), hex(v.card_challenge));
      session.verifyCardCryptogram(scp03CardCryptogram(sMac, hex(v.host_challenge), hex(v.card_challenge)));
      session.externalAuthenticateMac();
      const wrapped = session.wrap({ ...VERIFY, data: moicaPinBuffer(v.pin) });
      expect(Buffer.from([wrapped.cla, wrapped.ins, wrapped.p1, wrapped.p2, wrapped.data.length]).toString('hex')).toBe(v.wrapped_header);
      expect(wrapped.data.toString('hex')).toBe(v.wrapped_data_and_mac);
    },
  );

  it('rejects challenges that are not 8 bytes', () => {
    expectCode(() => new Scp03Session({ kEnc: Buffer.alloc(16), kMac: Buffer.alloc(16) }, Buffer.alloc(7), Buffer.alloc(8)), 'InvalidInput');
  });
});
