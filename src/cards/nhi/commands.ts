import type { CommandApdu } from '../../pcsc/apdu.js';

/** The NHI card's main applet (specs/nhi-card.md). */
export const NHI_APPLET_AID = Buffer.from('D1580000010000000000000000001100', 'hex');

export const NHI_SELECT_APPLET: CommandApdu = { cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x00, data: NHI_APPLET_AID };

/**
 * GET DATA of the 12-byte card id, byte for byte as the official agent sends it: data `00 00`
 * and no Le (the card answers anyway; on T=0 it says `61 0C`).
 */
export const NHI_READ_CARD_ID: CommandApdu = { cla: 0x00, ins: 0xca, p1: 0x00, p2: 0x00, data: Buffer.from([0, 0]) };
