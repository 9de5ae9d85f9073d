import { hex } from '../../../src/pcsc/apdu.js';
import { ReplayRegistry, ReplayTransport, TraceDivergence } from '../../../src/trace/replay.js';
import { type ApduTrace, TRACE_FORMAT, parseTrace } from '../../../src/trace/trace-file.js';

function trace(exchanges: { command: string; response: string }[]): ApduTrace {
  return {
    format: TRACE_FORMAT,
    operation: 'test',
    recordedAt: '2026-01-01T00:00:00.000Z',
    cardbridgeVersion: '0',
    source: 'virtual',
    privacy: [],
    sessions: [{ reader: 'R', atr: '3B00', cardType: { kind: 'moica', generation: 2 }, exclusive: false, exchanges: exchanges.map((e) => ({ atMs: 0, durationMs: 0, ...e })) }],
    outcome: { ok: true },
  };
}

describe('replay transport', () => {
  const recorded = trace([
    { command: '00A4040C02500100', response: '9000' },
    { command: '0420000118' + '**'.repeat(24), response: '9000' },
    { command: '80B0000010', response: '0102039000' },
  ]);

  it('answers the recorded responses; removed bytes match any byte of the same length', async () => {
    const replay = new ReplayTransport(recorded.sessions[0]!);
    expect((await replay.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5001'), le: 256 })).sw).toBe(0x9000);
    expect((await replay.transmit({ cla: 0x04, ins: 0x20, p1: 0, p2: 1, data: Buffer.alloc(24, 0x5a) })).sw).toBe(0x9000);
    const read = await replay.transmit({ cla: 0x80, ins: 0xb0, p1: 0, p2: 0, le: 0x10 });
    expect(read).toEqual({ data: hex('010203'), sw: 0x9000 });
    expect(() => replay.assertComplete()).not.toThrow();
  });

  it('fails on the first divergent command, naming the step and both commands', async () => {
    const replay = new ReplayTransport(recorded.sessions[0]!, 'fixture X');
    await replay.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5001'), le: 256 });
    const wrong = replay.transmit({ cla: 0x04, ins: 0x20, p1: 0, p2: 1, data: Buffer.alloc(16) });
    await expect(wrong).rejects.toThrow(TraceDivergence);
    await expect(wrong).rejects.toThrow(/fixture X: step 2 differs.*length 21 instead of 29[\s\S]*expected 04 20 00 01 18 \*\*[\s\S]*actual {3}04 20 00 01 10 00/);
    // A driver that swallowed the error is still caught at the end, and nothing further is served.
    await expect(replay.transmit({ cla: 0x80, ins: 0xb0, p1: 0, p2: 0, le: 0x10 })).rejects.toThrow(/step 2 differs/);
    expect(() => replay.assertComplete()).toThrow(/step 2 differs/);
  });

  it('names the first byte that differs in a same-length command', async () => {
    const replay = new ReplayTransport(recorded.sessions[0]!);
    await expect(replay.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5002'), le: 256 })).rejects.toThrow(/step 1 differs \(first at byte 6\)/);
  });

  it('fails when the driver stops early or sends more than the trace holds', async () => {
    const short = new ReplayTransport(recorded.sessions[0]!);
    await short.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5001'), le: 256 });
    expect(() => short.assertComplete()).toThrow(/stopped after 1 of 3 commands; step 2 expected 04 20 00 01 18/);
    const one = new ReplayTransport(trace([{ command: '00A4040C02500100', response: '9000' }]).sessions[0]!);
    await one.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5001'), le: 256 });
    await expect(one.transmit({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: hex('5001'), le: 256 })).rejects.toThrow(/trace ends after 1 commands/);
  });

  it('registry: serves sessions in order, refuses a card kind the trace does not hold, gives back host challenges', async () => {
    const t = trace([{ command: '8050010008D405EC4CDC43CF8D00', response: '9000' }]);
    const registry = new ReplayRegistry(t);
    expect(registry.random(8)).toEqual(hex('D405EC4CDC43CF8D'));
    expect(registry.random(8)).toEqual(Buffer.alloc(8));
    await expect(registry.withCard({ kind: 'nhi' }, async () => 1)).rejects.toThrow(/wants a nhi card but the trace holds moica/);
    await expect(registry.withCard({}, async () => 1)).rejects.toThrow(/opened session 2 but the trace has 1/);
  });
});

describe('trace files', () => {
  it('reject what is not a trace with a clear message', () => {
    expect(() => parseTrace('nope')).toThrow(/Not a cardbridge APDU trace: the file is not JSON/);
    expect(() => parseTrace('{"format":"x"}')).toThrow(/format is "x"/);
    const t = trace([{ command: '00A4ZZ', response: '9000' }]);
    expect(() => parseTrace(JSON.stringify(t))).toThrow(/session 1, exchange 1 command is not hex/);
    const noSw = trace([{ command: '00A4', response: '90' }]);
    expect(() => parseTrace(JSON.stringify(noSw))).toThrow(/is not hex|no status word/);
  });
});
