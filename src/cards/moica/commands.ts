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
