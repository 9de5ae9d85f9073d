import { jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import type { SamSession } from '../../../src/remote/nhi-sam/sam-client.js';
import { TRACE_FAKE_NHI_HOLDER } from '../../../src/trace/redact.js';
import { VIRTUAL_TRACE_PIN } from '../../../src/trace/virtual-cards.js';
import { moicaPinBuffer } from '../../../src/crypto/moica-pin-block.js';
import { NHI_TEST_IDENTITY } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import { ReplayRegistry } from '../../../src/trace/replay.js';
import { TRACE_HSIGN_INPUT, TRACE_SIGN_INPUT, type TraceOperation, runTraceOperation } from '../../../src/trace/operations.js';
import { type ApduTrace, parseHex, parseTrace } from '../../../src/trace/trace-file.js';

// Virtual MOICA cards generate their test PKI (RSA keys) once per file: slow on a busy machine.
jest.setTimeout(30_000);

/**
 * The real drivers and services replayed against the fixture traces recorded from the virtual
 * cards (`npm run traces:record`). A driver that changes what it sends fails here, at the step
 * that changed; after an intended change, record the fixtures again.
 */

const FIXTURES = new URL('../../fixtures/traces/', import.meta.url);

function load(name: string): ApduTrace {
  return parseTrace(readFileSync(new URL(name, FIXTURES), 'utf8'));
}

function exchangesOf(trace: ApduTrace) {
  return trace.sessions.flatMap((s) => s.exchanges);
}

/** Runs the recorded operation against its trace with a PIN the recording never had. */
async function replay(trace: ApduTrace, operation: TraceOperation, extra: Parameters<typeof runTraceOperation>[1] extends infer C ? Partial<C> : never = {}) {
  const registry = new ReplayRegistry(trace, `fixture ${trace.operation}`);
  const summary = await runTraceOperation(operation, { registry, random: registry.random, pin: async () => '000000', ...extra });
  registry.assertComplete();
  return summary;
}

describe('replaying the fixture traces through the real drivers', () => {
  it('NHI read: the service parses the fake holder the trace carries', async () => {
    const trace = load('nhi-read.json');
    const registry = new ReplayRegistry(trace);
    const info = await new NhiService(registry).readBasic();
    registry.assertComplete();
    expect(info).toMatchObject({ cardNumber: TRACE_FAKE_NHI_HOLDER.cardNumber, idNumber: TRACE_FAKE_NHI_HOLDER.idNumber, birthDateRoc: TRACE_FAKE_NHI_HOLDER.birthDateRoc, cardTermination: '0' });
  });

  it("NHI H_Sign relay: the card's part replays, and the SAM sees the recorded card answer", async () => {
    const trace = load('nhi-hsign.json');
    const exchanges = exchangesOf(trace);
    const mutualAuth = exchanges.find((e) => e.command.startsWith('00821112'))!;
    const samData = parseHex(mutualAuth.command.slice(10, 10 + 64), 'SAM data');
    const cardAnswer = parseHex(mutualAuth.response!, 'answer').subarray(0, -2);
    const challenge = parseHex(exchanges.find((e) => e.command === '0084000008')!.response!, 'challenge').subarray(0, -2);
    const seen: { cardId?: Buffer; challenge?: Buffer; reply?: Buffer; signed?: string } = {};
    // A SAM stand-in scripted from the trace: the replay checks the card side byte for byte.
    const sam = {
      authenticateCard: async (cardId: Uint8Array, c: Uint8Array) => ((seen.cardId = Buffer.from(cardId)), (seen.challenge = Buffer.from(c)), samData),
      sign: async (reply: Uint8Array, toBeSigned: string) => ((seen.reply = Buffer.from(reply)), (seen.signed = toBeSigned), Buffer.alloc(256, 7)),
      close: () => undefined,
    } as unknown as SamSession;
    const registry = new ReplayRegistry(trace);
    const value = await new NhiService(registry, { openSam: async () => sam }).hSign(TRACE_HSIGN_INPUT);
    registry.assertComplete();
    expect(value.length).toBe(256);
    expect(seen).toEqual({ cardId: Buffer.from(TRACE_FAKE_NHI_HOLDER.cardNumber), challenge, reply: cardAnswer, signed: TRACE_HSIGN_INPUT });
  });

  for (const generation of [1, 2] as const) {
    it(`MOICA generation ${generation} read: card info and certificates`, async () => {
      expect(await replay(load(`moica-gen${generation}-read.json`), 'moica-read')).toMatch(new RegExp(`^MOICA generation ${generation} card: \\d+ certificates`));
    });

    it(`MOICA generation ${generation} sign: the recorded signature verifies with the recorded certificate, replayed with any PIN (the trace has none)`, async () => {
      const trace = load(`moica-gen${generation}-sign.json`);
      expect(await replay(trace, 'moica-sign')).toBe(`MOICA generation ${generation} card signed ${TRACE_SIGN_INPUT.length} bytes: 256-byte PKCS#1 signature`);
      expect(exchangesOf(trace).some((e) => e.command.includes('**'))).toBe(true);
    });
  }

  it('a driver sending something else fails at that step, with both commands', async () => {
    const trace = load('moica-gen1-sign.json');
    // Pretend the recorded card got `80 EA 02` with another key reference: the driver now differs.
    const step = trace.sessions[1]!.exchanges.findIndex((e) => e.command.startsWith('80EA02'));
    const original = trace.sessions[1]!.exchanges[step]!.command;
    trace.sessions[1]!.exchanges[step]!.command = `${original.slice(0, 6)}7F${original.slice(8)}`;
    await expect(replay(trace, 'moica-sign')).rejects.toThrow(
      new RegExp(`fixture moica-sign, session 2: step ${step + 1} differs \\(first at byte 3\\):\\n  expected 80 EA 02 7F`),
    );
  });

  it('every fixture was recorded from the virtual cards, ended well, and holds neither the PIN nor the virtual holder', () => {
    const secrets = [
      VIRTUAL_TRACE_PIN,
      Buffer.from(VIRTUAL_TRACE_PIN).toString('hex').toUpperCase(),
      moicaPinBuffer(VIRTUAL_TRACE_PIN).toString('hex').toUpperCase(),
      NHI_TEST_IDENTITY.idNumber,
      Buffer.from(NHI_TEST_IDENTITY.idNumber).toString('hex').toUpperCase(),
      Buffer.from(NHI_TEST_IDENTITY.cardNumber).toString('hex').toUpperCase(),
    ];
    for (const name of ['nhi-read', 'nhi-hsign', 'moica-gen1-read', 'moica-gen2-read', 'moica-gen1-sign', 'moica-gen2-sign']) {
      expect(load(`${name}.json`)).toMatchObject({ source: 'virtual', outcome: { ok: true } });
      const text = readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8');
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});
