import type { CommandApdu } from '../../pcsc/apdu.js';

/** The NHI card's main applet (specs/nhi-card.md). */
export const NHI_APPLET_AID = Buffer.from('D1580000010000000000000000001100', 'hex');

export const NHI_SELECT_APPLET: CommandApdu = { cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: NHI_APPLET_AID };

/**
 * GET DATA of the 12-byte card id, byte for byte as the official agent sends it: data `00 00`
 * and no Le (the card answers anyway; on T=0 it says `61 0C`).
 */
export const NHI_READ_CARD_ID: CommandApdu = { cla: 0x00, ins: 0xca, p1: 0x00, p2: 0x00, data: Buffer.from([0, 0]) };

/** The SAM applet on the same card (AID ending `… 00 31 00`); the bridge itself never needs it. */
export const NHI_SAM_APPLET_AID = Buffer.from('D1580000010000000000000000003100', 'hex');

/** Length of the basic data record (specs/nhi-card.md, "The 57-byte basic data"). */
export const NHI_BASIC_DATA_LENGTH = 57;
export const NHI_CARD_ID_LENGTH = 12;
export const NHI_CHALLENGE_LENGTH = 8;
/** What the SAM sends for the card's mutual authentication, and what the card answers. */
export const NHI_SAM_AUTH_DATA_LENGTH = 32;
export const NHI_CARD_AUTH_ANSWER_LENGTH = 16;

/** GET DATA of the 57-byte basic data: `00 CA 11 00 02 00 00`. */
export const NHI_READ_BASIC_DATA: CommandApdu = { cla: 0x00, ins: 0xca, p1: 0x11, p2: 0x00, data: Buffer.from([0, 0]) };

/** GET DATA of the card status data: `00 CA 24 00 02 00 00`; its first character is the termination flag. */
export const NHI_READ_CARD_STATUS: CommandApdu = { cla: 0x00, ins: 0xca, p1: 0x24, p2: 0x00, data: Buffer.from([0, 0]) };

/** GET CHALLENGE of 8 bytes: `00 84 00 00 08`. */
export const NHI_GET_CHALLENGE: CommandApdu = { cla: 0x00, ins: 0x84, p1: 0x00, p2: 0x00, le: NHI_CHALLENGE_LENGTH };

/**
 * Mutual authentication with the SAM: `00 82 11 12 20 ‖ 32 bytes ‖ 10` (0x26 bytes in all);
 * the card answers 16 bytes for the SAM.
 */
export function nhiMutualAuthenticate(samData: Uint8Array): CommandApdu {
  return { cla: 0x00, ins: 0x82, p1: 0x11, p2: 0x12, data: Buffer.from(samData), le: NHI_CARD_AUTH_ANSWER_LENGTH };
}
