import { jest } from '@jest/globals';
import iconv from 'iconv-lite';
import { isoDateToRoc } from '../../../src/cards/nhi/basic-data.js';
import { MOICA_GEN1_PIN_KEY, MOICA_GEN1_PIN_KEY_ALT, moicaPinBuffer, moicaProtectedPinBlock } from '../../../src/crypto/moica-pin-block.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card } from '../../../src/emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import { VirtualNhiCard, type NhiTestIdentity } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { type TraceOperation, recordOperation } from '../../../src/trace/operations.js';
import { isSecureMessaging } from '../../../src/trace/redact.js';
import { serializeTrace } from '../../../src/trace/trace-file.js';
import { type VirtualTraceCard, startVirtualTraceRig } from '../../../src/trace/virtual-cards.js';

// Virtual MOICA cards generate their test PKI (RSA keys) once per file: slow on a busy machine.
jest.setTimeout(30_000);

/**
 * Records traces with a known PIN and a known holder, then searches the file for them in every
 * form we can derive — including the exact bytes the card received — and finds none.
 */

const PIN = '97531086';
const HOLDER: NhiTestIdentity = { cardNumber: '000042424242', name: '林測者', idNumber: 'F224466880', birthDate: '1977-07-17', sex: 'F', issueDate: '2011-11-11' };

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const asciiHex = (s: string) => hexOf(Buffer.from(s, 'ascii'));

/** The card with every command it receives kept. */
function capturing(card: VirtualCard): { card: VirtualCard; received: Buffer[] } {
  const received: Buffer[] = [];
  return {
    received,
    card: { atr: card.atr, reset: () => card.reset?.(), process: (c) => (received.push(Buffer.from(c)), card.process(c)) },
  };
}

async function record(kind: VirtualTraceCard, card: VirtualCard, operation: TraceOperation) {
  const rig = await startVirtualTraceRig(kind, card);
  try {
    let seed = 0;
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => (seed = (seed * 37 + 11) & 0xff)));
    const recorded = await recordOperation(
      operation,
      { registry: rig.registry, pin: async () => PIN, random, ...(rig.sam ? { nhi: { sam: { host: rig.sam.host, port: rig.sam.port } } } : {}) },
      'virtual',
    );
    expect(recorded.error).toBeUndefined();
    return serializeTrace(recorded.trace);
  } finally {
    await rig.close();
  }
}

function expectAbsent(text: string, secrets: Record<string, string>): void {
  for (const [what, value] of Object.entries(secrets)) {
    expect(value.length).toBeGreaterThanOrEqual(3); // long enough not to occur by chance
    if (text.toUpperCase().includes(value.toUpperCase())) throw new Error(`the trace contains ${what}: ${value}`);
  }
}

describe('a recorded trace never holds the PIN', () => {
  for (const generation of [1, 2] as const) {
    it(`MOICA generation ${generation} sign: not as ASCII, hex, PIN block, the bytes the card saw, or a MAC chained from them`, async () => {
      const pki = await getTestPki();
      const virtual = generation === 1 ? new VirtualMoicaGen1Card(pki, { pin: PIN }) : new VirtualMoicaGen2Card(pki, { pin: PIN });
      const { card, received } = capturing(virtual);
      const text = await record(generation === 1 ? 'moica-gen1' : 'moica-gen2', card, 'moica-sign');

      const secrets: Record<string, string> = { 'the PIN': PIN, 'the PIN in hex': asciiHex(PIN), 'the FF-padded PIN buffer': hexOf(moicaPinBuffer(PIN)) };
      const verifyAt = received.findIndex((c) => c[1] === 0x20);
      expect(verifyAt).toBeGreaterThan(0);
      const verify = received[verifyAt]!;
      expect(verify[0]).toBe(generation === 1 ? 0x8c : 0x04); // protected / secure-messaging VERIFY
      secrets['the VERIFY data the card received'] = hexOf(verify.subarray(5));
      if (generation === 1) {
        const iv = verify.subarray(5, 13);
        secrets['the IV (it and the public key give the PIN)'] = hexOf(iv);
        for (const key of [MOICA_GEN1_PIN_KEY, MOICA_GEN1_PIN_KEY_ALT]) secrets[`the cryptogram under ${key}`] = hexOf(moicaProtectedPinBlock(PIN, iv, key).cryptogram);
      } else {
        secrets['the encrypted PIN'] = hexOf(verify.subarray(5, 21));
        secrets['the VERIFY C-MAC'] = hexOf(verify.subarray(21, 29));
        const later = received.slice(verifyAt + 1).filter((c) => isSecureMessaging(c[0]!) && c.length >= 13);
        expect(later.length).toBeGreaterThanOrEqual(4); // SELECT 5030, SELECT 0810, EA 82, EA 02, (C1)
        later.forEach((c, i) => {
          const lc = c[4]!;
          secrets[`the chained C-MAC of SM command ${i + 1}`] = hexOf(c.subarray(5 + lc - 8, 5 + lc));
        });
      }
      expectAbsent(text, secrets);
    });
  }
});

describe('a recorded NHI trace never holds the holder data', () => {
  const roc = (iso: string) => isoDateToRoc(iso)!;
  const secrets = {
    'the card number': HOLDER.cardNumber,
    'the card number in hex': asciiHex(HOLDER.cardNumber),
    'the ID number': HOLDER.idNumber,
    'the ID number in hex': asciiHex(HOLDER.idNumber),
    'the name': HOLDER.name as string,
    'the name in Big5 hex': hexOf(iconv.encode(HOLDER.name as string, 'big5hkscs')),
    'the birth date (ROC) in hex': asciiHex(roc(HOLDER.birthDate)),
    'the issue date (ROC) in hex': asciiHex(roc(HOLDER.issueDate)),
    'birth date and sex as stored': asciiHex(roc(HOLDER.birthDate) + HOLDER.sex),
  };

  it('read: basic data, card id and status are replaced', async () => {
    const text = await record('nhi', new VirtualNhiCard({ identity: HOLDER }), 'nhi-read');
    expect(text).toContain(asciiHex('900000000009')); // the fake holder is there instead
    expectAbsent(text, secrets);
  });

  it('H_Sign relay: the card id is replaced', async () => {
    const text = await record('nhi', new VirtualNhiCard({ identity: HOLDER }), 'nhi-hsign');
    expect(text).toContain('"ok": true');
    expectAbsent(text, secrets);
  });
});
