import { aesEcbDecrypt } from './aes.js';
import { aesCmac } from './aes-cmac.js';
import { requireByte, requireBytes } from './bytes.js';
import { SCP03_DERIVATION, scp03KdfInput } from './scp03.js';

/**
 * Static SCP03 keys of the MOICA generation-2 applet ("Diverse" in the vendor middleware),
 * spec section 3. The master key is not stored anywhere in clear: it is the AES decryption of
 * a fixed block under a fixed ASCII key, both taken from the spec.
 */

export const HICOS_DIVERSE_WRAPPING_KEY = 'CHT HiCOSPKCS#11';
export const HICOS_DIVERSE_WRAPPED_MASTER = Buffer.from('eee765099e9b8d52a33734760dd0305e', 'hex');

/** AID of the card's ISD-CM (security domain); its bytes 10..15 are part of the derivation data. */
export const MOICA_ISD_CM_AID = Buffer.from('a000000283ff088692535389c00014', 'hex');

export const MOICA_CARD_ID_LENGTH = 10;

/** Key-type byte `t` of the derivation data, paired with the SCP03 derivation constant. */
const KEY_TYPE = { enc: 0x01, mac: 0x02 } as const;

export function hicosDiverseMasterKey(): Buffer {
  return aesEcbDecrypt(Buffer.from(HICOS_DIVERSE_WRAPPING_KEY, 'latin1'), HICOS_DIVERSE_WRAPPED_MASTER);
}

function aidTail(isdCmAid: Uint8Array): Buffer {
  // The spec gives one AID (15 bytes) and says "bytes 10..15"; with any other length we would be
  // guessing which bytes the card uses, so refuse instead.
  return requireBytes('ISD-CM AID', isdCmAid, 15).subarray(10, 15);
}

/**
 * The 32-byte derivation data S(c, t) of the spec. Its layout is exactly one SCP03 KDF input
 * block (constant c, L = 128 bits, counter 1) whose context is t ‖ card id ‖ AID tail, so it is
 * built with the SCP03 KDF helper; the unit test checks it byte by byte against the spec's table.
 */
export function hicosDiverseDerivationData(
  constant: number,
  keyType: number,
  cardId: Uint8Array,
  isdCmAid: Uint8Array = MOICA_ISD_CM_AID,
): Buffer {
  const context = Buffer.concat([
    Buffer.from([requireByte('key type', keyType)]),
    requireBytes('card id', cardId, MOICA_CARD_ID_LENGTH),
    aidTail(isdCmAid),
  ]);
  return scp03KdfInput(constant, 128, 1, context);
}

export interface DiversifiedStaticKeys {
  kEnc: Buffer;
  kMac: Buffer;
}

/**
 * K-ENC = AES-CMAC(master, S(0x04, 1)), K-MAC = AES-CMAC(master, S(0x06, 2)). `cardId` is the
 * 10-byte value of GET DATA 45 on the ISD. No DEK: security level 3 never needs one.
 */
export function diversifyMoicaStaticKeys(
  cardId: Uint8Array,
  isdCmAid: Uint8Array = MOICA_ISD_CM_AID,
): DiversifiedStaticKeys {
  const master = hicosDiverseMasterKey();
  try {
    return {
      kEnc: aesCmac(master, hicosDiverseDerivationData(SCP03_DERIVATION.sEnc, KEY_TYPE.enc, cardId, isdCmAid)),
      kMac: aesCmac(master, hicosDiverseDerivationData(SCP03_DERIVATION.sMac, KEY_TYPE.mac, cardId, isdCmAid)),
    };
  } finally {
    master.fill(0);
  }
}
