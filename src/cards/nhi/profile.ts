import type { CardProfile, CardType } from '../profile.js';
import { NHI_CARD_ID_LENGTH, NHI_READ_CARD_ID, NHI_SELECT_APPLET } from './commands.js';
import { NhiCard } from './nhi-card.js';

/** The NHI health insurance card (健保卡): recognised by its applet, or by its card id on newer cards. */
export const nhiProfile: CardProfile<'nhi', NhiCard> = {
  kind: 'nhi',
  label: 'health insurance card (健保卡)',
  async recognise(transport) {
    return (await transport.transmit(NHI_SELECT_APPLET)).sw === 0x9000 ? NHI : undefined;
  },
  // Some newer NHI cards refuse the SELECT yet answer GET DATA; other cards may answer it too,
  // so it is tried only after every other profile's probe.
  async recogniseLast(transport) {
    const cardId = await transport.transmit(NHI_READ_CARD_ID);
    return cardId.sw === 0x9000 && cardId.data.length === NHI_CARD_ID_LENGTH ? NHI : undefined;
  },
  open: (transport) => new NhiCard(transport),
};

const NHI: CardType = Object.freeze({ kind: 'nhi' });
