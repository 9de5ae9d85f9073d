import type { CardTransport } from '../pcsc/transport.js';
import type { CardType } from '../readers/types.js';
import { NHI_READ_CARD_ID, NHI_SELECT_APPLET } from './nhi/commands.js';
import { MOICA_GEN1_SELECT_MF, MOICA_GEN2_SELECT_APPLET } from './moica/commands.js';

/**
 * Tells which card is in a reader with read-only probes that change nothing on the card.
 * Order: NHI applet (the most common card), MOICA generation 2 applet, MOICA generation 1
 * MF (CLA 0x80: the HiCOS OS refuses CLA 0x00), then the NHI card-id read, because some
 * newer NHI cards refuse the SELECT yet answer GET DATA.
 */
export async function recognizeCard(transport: CardTransport): Promise<CardType> {
  if ((await transport.transmit(NHI_SELECT_APPLET)).sw === 0x9000) return { kind: 'nhi' };
  if ((await transport.transmit(MOICA_GEN2_SELECT_APPLET)).sw === 0x9000) return { kind: 'moica', generation: 2 };
  const mf = await transport.transmit(MOICA_GEN1_SELECT_MF);
  if (mf.sw === 0x9000 || (mf.sw & 0xff00) === 0x6200) return { kind: 'moica', generation: 1 };
  const cardId = await transport.transmit(NHI_READ_CARD_ID);
  if (cardId.sw === 0x9000 && cardId.data.length === 12) return { kind: 'nhi' };
  return { kind: 'unknown' };
}
