import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CardBridgeError } from '../../../src/errors.js';
import { TRIES_FILE, TriesTracker } from '../../../src/services/pin/tries-tracker.js';

const SERIAL = 'TP03000012345678';
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tries-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const wrong = (left: number) => new CardBridgeError(left === 0 ? 'PinBlocked' : 'PinIncorrect', 'wrong', { triesLeft: left, sw: 0x63c0 | left });

describe('TriesTracker', () => {
  it('knows nothing about a card it has not seen', async () => {
    expect(await TriesTracker.inStateDir(dir).status(SERIAL)).toEqual({ known: false, blocked: false });
  });

  it('follows 63 Cx, is blocked by 69 83 or 63 C0, and forgets the count on success', async () => {
    const tracker = TriesTracker.inStateDir(dir);
    await tracker.recordFailure(SERIAL, wrong(2));
    expect(await tracker.status(SERIAL)).toEqual({ known: true, triesLeft: 2, blocked: false });
    await tracker.recordFailure(SERIAL, wrong(1));
    expect(await tracker.status(SERIAL)).toEqual({ known: true, triesLeft: 1, blocked: false });
    await tracker.recordFailure(SERIAL, new CardBridgeError('PinBlocked', 'blocked', { sw: 0x6983, triesLeft: 0 }));
    expect(await tracker.status(SERIAL)).toEqual({ known: true, triesLeft: 0, blocked: true });
    await tracker.recordSuccess(SERIAL);
    expect(await tracker.status(SERIAL)).toEqual({ known: false, blocked: false });
    await tracker.recordFailure(SERIAL, wrong(0));
    expect((await tracker.status(SERIAL)).blocked).toBe(true);
  });

  it('ignores failures that say nothing about the PIN', async () => {
    const tracker = TriesTracker.inStateDir(dir);
    await tracker.recordFailure(SERIAL, new CardBridgeError('CardRemoved', 'gone'));
    await tracker.recordFailure(SERIAL, new CardBridgeError('PinIncorrect', 'no count'));
    expect(await tracker.status(SERIAL)).toEqual({ known: false, blocked: false });
  });

  it('survives a restart (a new tracker on the same state directory) and keeps cards apart', async () => {
    await TriesTracker.inStateDir(dir).recordFailure(SERIAL, wrong(1));
    const restarted = TriesTracker.inStateDir(dir);
    expect(await restarted.status(SERIAL)).toEqual({ known: true, triesLeft: 1, blocked: false });
    expect(await restarted.status('TP03000099999999')).toEqual({ known: false, blocked: false });
  });

  it('stores a hash of the serial, never the serial, in a private file', async () => {
    await TriesTracker.inStateDir(dir).recordFailure(SERIAL, wrong(2));
    const text = readFileSync(join(dir, TRIES_FILE), 'utf8');
    expect(text).not.toContain(SERIAL);
    expect(text).not.toContain('12345678');
    expect(statSync(join(dir, TRIES_FILE)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('treats an unreadable file as unknown rather than failing every PIN operation', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, TRIES_FILE), '{not json');
    const tracker = TriesTracker.inStateDir(dir);
    expect(await tracker.status(SERIAL)).toEqual({ known: false, blocked: false });
    await tracker.recordFailure(SERIAL, wrong(2));
    expect(await TriesTracker.inStateDir(dir).status(SERIAL)).toMatchObject({ triesLeft: 2 });
  });
});
