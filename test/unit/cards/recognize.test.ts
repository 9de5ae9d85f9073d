import { recognizeCard } from '../../../src/cards/index.js';
import { hex } from '../../../src/pcsc/apdu.js';
import { createApduTransport } from '../../../src/pcsc/transport.js';

/** A card defined by a table of exact command hex → response hex; anything else gets `fallback`. */
function scriptedCard(answers: Record<string, string>, fallback = '6A82') {
  const seen: string[] = [];
  const transport = createApduTransport(async (bytes) => {
    const key = bytes.toString('hex').toUpperCase();
    seen.push(key);
    return hex(answers[key] ?? fallback);
  });
  return { transport, seen };
}

const SELECT_NHI = '00A4040010D1580000010000000000000000001100';
const SELECT_GEN2 = '00A4040C10A000000283000006220169640001010100';
const SELECT_GEN1_MF = '80A40000023F00';
const NHI_CARD_ID = '00CA0000020000';

describe('card recognition', () => {
  it('sends the probes byte for byte as the specs give them, in order, for an unknown card', async () => {
    const { transport, seen } = scriptedCard({});
    expect(await recognizeCard(transport)).toEqual({ kind: 'unknown' });
    expect(seen).toEqual([SELECT_NHI, SELECT_GEN2, SELECT_GEN1_MF, NHI_CARD_ID]);
  });

  it('recognises an NHI card by its applet and stops probing', async () => {
    const { transport, seen } = scriptedCard({ [SELECT_NHI]: '9000' });
    expect(await recognizeCard(transport)).toEqual({ kind: 'nhi' });
    expect(seen).toEqual([SELECT_NHI]);
  });

  it('recognises a newer NHI card that refuses SELECT but answers the card-id read', async () => {
    const { transport } = scriptedCard({ [SELECT_NHI]: '6D00', [NHI_CARD_ID]: `${Buffer.from('000011112222').toString('hex')}9000` }, '6D00');
    expect(await recognizeCard(transport)).toEqual({ kind: 'nhi' });
  });

  it('recognises MOICA generation 2 by its applet', async () => {
    const { transport, seen } = scriptedCard({ [SELECT_GEN2]: '9000' });
    expect(await recognizeCard(transport)).toEqual({ kind: 'moica', generation: 2 });
    expect(seen).not.toContain(SELECT_GEN1_MF);
  });

  it('recognises MOICA generation 1 by its MF under CLA 0x80 (CLA 0x00 answers 6E 00)', async () => {
    const accepting = scriptedCard({ [SELECT_GEN1_MF]: '9000' }, '6E00');
    expect(await recognizeCard(accepting.transport)).toEqual({ kind: 'moica', generation: 1 });
    const withFci = scriptedCard({ [SELECT_GEN1_MF]: '6283' }, '6E00');
    expect(await recognizeCard(withFci.transport)).toEqual({ kind: 'moica', generation: 1 });
  });
});

describe('card profiles', () => {
  it('open the driver for the generation recognised at insertion without probing again', async () => {
    const { moicaProfile } = await import('../../../src/cards/index.js');
    const { transport, seen } = scriptedCard({});
    expect(moicaProfile.open(transport, { kind: 'moica', generation: 2 }).generation).toBe(2);
    expect(moicaProfile.open(transport, { kind: 'moica', generation: 1 }).generation).toBe(1);
    expect(seen).toEqual([]);
    expect(() => moicaProfile.open(transport, { kind: 'nhi' })).toThrow(expect.objectContaining({ code: 'WrongCard' }));
  });

  it('give every place the same card names', async () => {
    const { describeCardType, describeKind } = await import('../../../src/cards/index.js');
    expect(describeCardType({ kind: 'moica', generation: 1 })).toBe('citizen certificate card (自然人憑證), generation 1');
    expect(describeCardType({ kind: 'nhi' })).toBe('health insurance card (健保卡)');
    expect(describeCardType({ kind: 'unknown' })).toBe('unknown card');
    expect(describeKind('nhi')).toBe('a health insurance card (健保卡)');
  });
});
