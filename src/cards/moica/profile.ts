import { CardBridgeError } from '../../errors.js';
import type { CardProfile } from '../profile.js';
import { MOICA_GEN1_SELECT_MF, MOICA_GEN2_SELECT_APPLET } from './commands.js';
import type { MoicaCard, MoicaDriverOptions } from './moica-card.js';
import { MoicaGen1Card } from './moica-gen1.js';
import { MoicaGen2Card } from './moica-gen2.js';

/**
 * The MOICA citizen certificate card (自然人憑證). The generation is found by probing, not by ATR
 * (spec §1 "Generation detection"): the gen-2 applet SELECT first, then the gen-1 MF with CLA
 * 0x80 (the HiCOS OS refuses CLA 0x00).
 */
export const moicaProfile: CardProfile<'moica', MoicaCard, MoicaDriverOptions> = {
  kind: 'moica',
  label: 'citizen certificate card (自然人憑證)',
  variant: (type) => (type.generation === undefined ? undefined : `generation ${type.generation}`),
  async recognise(transport) {
    if ((await transport.transmit(MOICA_GEN2_SELECT_APPLET)).sw === 0x9000) return { kind: 'moica', generation: 2 };
    const mf = await transport.transmit(MOICA_GEN1_SELECT_MF);
    if (mf.sw === 0x9000 || (mf.sw & 0xff00) === 0x6200) return { kind: 'moica', generation: 1 };
    return undefined;
  },
  open(transport, type, options = {}) {
    if (type.kind === 'moica' && type.generation === 2) return new MoicaGen2Card(transport, options);
    if (type.kind === 'moica' && type.generation === 1) return new MoicaGen1Card(transport, options);
    throw new CardBridgeError('WrongCard', 'The card is not a citizen certificate card (自然人憑證)', {
      hint: 'Insert a citizen certificate card (自然人憑證).',
    });
  },
};
