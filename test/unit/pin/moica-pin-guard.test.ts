import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { TriesTracker } from '../../../src/services/pin/tries-tracker.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { PIN, type Generation, setup } from '../moica/helpers.js';

/** Every VERIFY the card received, protected (8C 20), under SM (04 20) or plain. */
const verifies = (received: Buffer[]) => received.filter((c) => c[1] === 0x20).length;
const WRONG = '654321';
const sign = (service: MoicaService, pin: string, confirmLastTry = false) => service.sign({ data: Buffer.from('x'), format: 'pkcs1' }, pin, { confirmLastTry });

let dir: string;
beforeAll(() => getTestPki(), 60_000);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pin-guard-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe.each([1, 2] as Generation[])('MoicaService PIN guard, generation %i', (generation) => {
  it('refuses the last try without a confirmation, sending no VERIFY; with it, spends it and resets the count', async () => {
    const { registry, card } = await setup(generation);
    const tries = TriesTracker.inStateDir(dir);
    const service = new MoicaService(registry, { tries });
    await expect(sign(service, WRONG)).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 2 });
    await expect(sign(service, WRONG)).rejects.toMatchObject({ code: 'PinIncorrect', triesLeft: 1 });
    const before = verifies(card.received);
    await expect(sign(service, PIN)).rejects.toMatchObject({ code: 'LastTryNeedsConfirmation', triesLeft: 1 });
    await expect(service.decrypt(Buffer.alloc(256, 1), PIN)).rejects.toMatchObject({ code: 'LastTryNeedsConfirmation' });
    expect(verifies(card.received)).toBe(before);
    expect(card.triesLeft).toBe(1);
    await expect(sign(service, PIN, true)).resolves.toMatchObject({ format: 'pkcs1' });
    expect(await tries.status(card.serialNumber)).toEqual({ known: false, blocked: false });
    await expect(sign(service, PIN)).resolves.toMatchObject({ format: 'pkcs1' });
  });

  it('knows the count after a restart (a new service and tracker on the same state directory)', async () => {
    const { registry, card } = await setup(generation);
    await expect(sign(new MoicaService(registry, { tries: TriesTracker.inStateDir(dir) }), WRONG)).rejects.toMatchObject({ triesLeft: 2 });
    await expect(sign(new MoicaService(registry, { tries: TriesTracker.inStateDir(dir) }), WRONG)).rejects.toMatchObject({ triesLeft: 1 });
    const before = verifies(card.received);
    await expect(sign(new MoicaService(registry, { tries: TriesTracker.inStateDir(dir) }), PIN)).rejects.toMatchObject({ code: 'LastTryNeedsConfirmation' });
    expect(verifies(card.received)).toBe(before);
  });

  it('never sends a VERIFY to a card it knows is blocked, and says how to unblock it', async () => {
    const { registry, card } = await setup(generation, { triesLeft: 1 });
    const service = new MoicaService(registry, { tries: TriesTracker.inStateDir(dir) });
    await expect(sign(service, WRONG, true)).rejects.toMatchObject({ code: 'PinBlocked' });
    const before = verifies(card.received);
    const blocked = await sign(service, PIN, true).catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: 'PinBlocked' });
    expect((blocked as { hint: string }).hint).toContain('用戶代碼');
    await expect(service.decrypt(Buffer.alloc(256, 1), PIN, {}, { confirmLastTry: true })).rejects.toMatchObject({ code: 'PinBlocked' });
    expect(verifies(card.received)).toBe(before);
    expect(await service.pinStatus()).toMatchObject({ serialNumber: card.serialNumber, blocked: true });
  });
});
