import type { CommandApdu } from '../../pcsc/apdu.js';

/** The generation-2 MOICA applet (specs/moica-card.md §3). */
export const MOICA_GEN2_APPLET_AID = Buffer.from('A0000002830000062201696400010101', 'hex');

/** SELECT of the gen-2 applet with P2 = 0C (no FCI wanted). */
export const MOICA_GEN2_SELECT_APPLET: CommandApdu = {
  cla: 0x00,
  ins: 0xa4,
  p1: 0x04,
  p2: 0x0c,
  data: MOICA_GEN2_APPLET_AID,
  le: 256,
};

/** Generation 1 speaks CLA 0x80 only; selecting the MF is the cheapest proof of it. */
export const MOICA_GEN1_SELECT_MF: CommandApdu = { cla: 0x80, ins: 0xa4, p1: 0x00, p2: 0x00, data: Buffer.from([0x3f, 0x00]) };

// ——— files (specs/moica-card.md §2 "Files"; generation 2 uses the same FIDs inside the applet) ———

export const MOICA_FID = {
  /** Generation 1 master file: the start of absolute paths. */
  MF: 0x3f00,
  /** Generation 2 paths start with 7FFF, meaning "the applet". */
  APPLET: 0x7fff,
  INFO_DF: 0x0900,
  SERIAL: 0x0903,
  VERSION: 0x0905,
  PKCS15_DF: 0x5030,
  PRKDF: 0x4100,
  PUKDF: 0x4101,
  CDF: 0x4104,
  CERTIFICATES: 0x08f2,
  /** The key EF selected for VERIFY and private-key operations. */
  KEYS: 0x0810,
  /** Another public-key EF the PuKDF may point to (spec corrections). */
  KEYS_ALT: 0x0811,
} as const;

/** Le of the card-information reads (spec corrections: 0903 with 16, 0905 with 24). */
export const MOICA_SERIAL_LENGTH = 16;
export const MOICA_VERSION_LENGTH = 24;

/** Largest READ BINARY the cards are asked for; 16 after a `69 87`. */
export const MOICA_READ_CHUNK = 0xc8;
export const MOICA_SMALL_READ_CHUNK = 0x10;

function fidBytes(fid: number): Buffer {
  return Buffer.from([(fid >> 8) & 0xff, fid & 0xff]);
}

/** Generation 1 SELECT by FID, relative to the current DF (3F00 selects the MF). */
export function gen1SelectFid(fid: number): CommandApdu {
  return { cla: 0x80, ins: 0xa4, p1: 0x00, p2: 0x00, data: fidBytes(fid) };
}

/** Generation 1 READ BINARY; the offset is 15 bits (P1 bit 8 would mean an SFI). */
export function gen1ReadBinary(offset: number, length: number): CommandApdu {
  return { cla: 0x80, ins: 0xb0, p1: (offset >> 8) & 0x7f, p2: offset & 0xff, le: length };
}

/** Generation 1 READ RECORD of the key EF: 1 record-number byte, then 128 data bytes. */
export function gen1ReadKeyRecord(record: number): CommandApdu {
  return { cla: 0x80, ins: 0xb2, p1: record, p2: 0x00, le: 0x81 };
}

/** Protected VERIFY `8C 20 00 01 20 ‖ IV ‖ cryptogram` (never a plain VERIFY). */
export function gen1ProtectedVerify(iv: Uint8Array, cryptogram: Uint8Array): CommandApdu {
  return { cla: 0x8c, ins: 0x20, p1: 0x00, p2: 0x01, data: Buffer.concat([iv, cryptogram]) };
}

/**
 * The two halves of the private-key input block: P1 82 (first, more follows) then 02 (last).
 * CLA 80 on both generations; generation 2 sends them through the secure channel (84).
 */
export function privateOperationPart(part: 'first' | 'last', keyRef: number, half: Uint8Array, le?: number): CommandApdu {
  const command: CommandApdu = { cla: 0x80, ins: 0xea, p1: part === 'first' ? 0x82 : 0x02, p2: keyRef, data: Buffer.from(half) };
  if (le !== undefined) command.le = le;
  return command;
}

/** Fetches result bytes of the last private operation from `offset`. */
export function privateOperationResult(offset: number, length: number): CommandApdu {
  return { cla: 0x80, ins: 0xc1, p1: (offset >> 8) & 0xff, p2: offset & 0xff, le: length };
}

/** Generation 2 SELECT by FID inside the applet (P2 04, with Le). */
export function gen2SelectFid(fid: number): CommandApdu {
  return { cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x04, data: fidBytes(fid), le: 256 };
}

/** Generation 2 SELECT by FID through the secure channel: no Le (goes out as `04 A4 00 04 18`). */
export function gen2SecureSelectFid(fid: number): CommandApdu {
  return { cla: 0x00, ins: 0xa4, p1: 0x00, p2: 0x04, data: fidBytes(fid) };
}

/** Generation 2 READ BINARY (CLA 00; the spec gives no class for it: see docs). */
export function gen2ReadBinary(offset: number, length: number): CommandApdu {
  return { cla: 0x00, ins: 0xb0, p1: (offset >> 8) & 0x7f, p2: offset & 0xff, le: length };
}

/** Generation 2 public key: the two plain 128-byte modulus halves (P2 03 and 04). */
export function gen2ReadModulusHalf(keyRef: number, half: 1 | 2): CommandApdu {
  return { cla: 0x80, ins: 0xb2, p1: keyRef, p2: half === 1 ? 0x03 : 0x04, le: 256 };
}

/** VERIFY as sent inside the generation-2 secure channel (it goes out as `04 20 00 01`). */
export function gen2VerifyUnderChannel(pinBuffer: Uint8Array): CommandApdu {
  return { cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x01, data: Buffer.from(pinBuffer) };
}

export const MOICA_ISD_AID = Buffer.from('A0000001510000', 'hex');

export function selectByAid(aid: Uint8Array): CommandApdu {
  return { cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: Buffer.from(aid) };
}

/** GET DATA E0 on the ISD-CM: key information template (byte [7] is the key length). */
export const MOICA_GEN2_GET_KEY_INFO: CommandApdu = { cla: 0x80, ins: 0xca, p1: 0x00, p2: 0xe0, le: 256 };
/** GET DATA 45 on the ISD: `45 0A <10-byte card id>`. */
export const MOICA_GEN2_GET_CARD_ID: CommandApdu = { cla: 0x80, ins: 0xca, p1: 0x00, p2: 0x45, le: 256 };

export function initializeUpdate(hostChallenge: Uint8Array, keyVersion = 0x01): CommandApdu {
  return { cla: 0x80, ins: 0x50, p1: keyVersion, p2: 0x00, data: Buffer.from(hostChallenge), le: 256 };
}
