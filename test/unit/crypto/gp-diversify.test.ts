import { aesCmac } from '../../../src/crypto/aes-cmac.js';
import {
  MOICA_ISD_CM_AID,
  diversifyMoicaStaticKeys,
  hicosDiverseDerivationData,
  hicosDiverseMasterKey,
} from '../../../src/crypto/gp-diversify.js';
import { isCardBridgeError } from '../../../src/errors.js';
import { hex, vectors } from './vectors.js';

/** S(c, t) written out from the spec's byte table, independently of the implementation. */
function specDerivationData(c: number, t: number, cardId: Buffer): Buffer {
  const s = Buffer.alloc(32);
  s[0x0b] = c;
  s[0x0d] = 0x00;
  s[0x0e] = 0x80;
  s[0x0f] = 0x01;
  s[0x10] = t;
  cardId.copy(s, 0x11);
  hex('5389c00014').copy(s, 0x1b);
  return s;
}

describe('MOICA gen-2 "Diverse" static keys', () => {
  it.each(vectors.gen2_diversified_keys.map((v) => [v.card_id, v]))('vector: card id %s', (_id, v) => {
    const keys = diversifyMoicaStaticKeys(hex(v.card_id));
    expect(keys.kEnc.toString('hex')).toBe(v.k_enc);
    expect(keys.kMac.toString('hex')).toBe(v.k_mac);
  });

  it.each(vectors.gen2_diversified_keys_real_card.map((v) => [v.card_id, v]))('real-card known answer: card id %s', (_id, v) => {
    const keys = diversifyMoicaStaticKeys(hex(v.card_id), MOICA_ISD_CM_AID);
    expect(keys.kEnc.toString('hex')).toBe(v.k_enc);
    expect(keys.kMac.toString('hex')).toBe(v.k_mac);
  });

  it('builds S(c, t) exactly as the spec lays it out', () => {
    const cardId = hex(vectors.gen2_diversified_keys[0]!.card_id);
    expect(hicosDiverseDerivationData(0x04, 1, cardId)).toEqual(specDerivationData(0x04, 1, cardId));
    expect(hicosDiverseDerivationData(0x06, 2, cardId)).toEqual(specDerivationData(0x06, 2, cardId));
  });

  it('K-ENC and K-MAC are AES-CMAC of S under the unwrapped master key', () => {
    const cardId = hex('00112233445566778899');
    const master = hicosDiverseMasterKey();
    expect(master).toHaveLength(16);
    const keys = diversifyMoicaStaticKeys(cardId);
    expect(keys.kEnc).toEqual(aesCmac(master, specDerivationData(0x04, 1, cardId)));
    expect(keys.kMac).toEqual(aesCmac(master, specDerivationData(0x06, 2, cardId)));
    expect(keys.kEnc).not.toEqual(keys.kMac);
  });

  it('takes the derivation tail from bytes 10..15 of the ISD-CM AID', () => {
    expect(MOICA_ISD_CM_AID.toString('hex')).toBe('a000000283ff088692535389c00014');
    expect(MOICA_ISD_CM_AID.subarray(10, 15).toString('hex')).toBe('5389c00014');
  });

  it.each([
    ['a 9-byte card id', () => diversifyMoicaStaticKeys(Buffer.alloc(9))],
    ['an AID of another length', () => diversifyMoicaStaticKeys(Buffer.alloc(10), Buffer.alloc(16))],
  ])('rejects %s as InvalidInput', (_label, fn) => {
    let thrown: unknown;
    try {
      fn();
    } catch (e) {
      thrown = e;
    }
    expect(isCardBridgeError(thrown, 'InvalidInput')).toBe(true);
  });
});
