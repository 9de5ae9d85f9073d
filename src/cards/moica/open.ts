import { CardBridgeError } from '../../errors.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { MOICA_GEN1_SELECT_MF, MOICA_GEN2_SELECT_APPLET } from './commands.js';
import type { MoicaCard, MoicaDriverOptions } from './moica-card.js';
import { MoicaGen1Card } from './moica-gen1.js';
import { MoicaGen2Card } from './moica-gen2.js';

/**
 * Picks the driver by probing, not by ATR (spec §1 "Generation detection"): the gen-2 applet
 * SELECT first, then the gen-1 MF with CLA 0x80. Anything else is not a MOICA card.
 */
export async function openMoicaCard(transport: CardTransport, options: MoicaDriverOptions = {}): Promise<MoicaCard> {
  if ((await transport.transmit(MOICA_GEN2_SELECT_APPLET)).sw === 0x9000) return new MoicaGen2Card(transport, options);
  const mf = await transport.transmit(MOICA_GEN1_SELECT_MF);
  if (mf.sw === 0x9000 || (mf.sw & 0xff00) === 0x6200) return new MoicaGen1Card(transport, options);
  throw new CardBridgeError('WrongCard', 'The card is not a citizen certificate card (自然人憑證)', {
    hint: 'Insert a citizen certificate card (自然人憑證).',
  });
}
