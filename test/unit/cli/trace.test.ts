import { jest } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import type { CliInput } from '../../../src/cli/io.js';
import { parseTrace } from '../../../src/trace/trace-file.js';
import { captureIO } from '../../helpers/capture-io.js';
import { VIRTUAL_TRACE_PIN } from '../../../src/trace/virtual-cards.js';

// Virtual MOICA cards generate their test PKI (RSA keys) once per file: slow on a busy machine.
jest.setTimeout(30_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardbridge-trace-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function piped(text: string): CliInput {
  const stream = new PassThrough();
  stream.end(text);
  return stream;
}

describe('cardbridge trace', () => {
  it('records an NHI read from the virtual card: sessions, ATR, outcome, no holder data', async () => {
    const out = join(dir, 'nhi.json');
    const io = captureIO();
    expect(await main(['trace', 'nhi', 'read', '--virtual', 'nhi', '--out', out], io)).toBe(0);
    expect(io.stderr[0]).toMatch(/^Trace of nhi-read written to .*nhi\.json: 1 card session\(s\), \d+ commands; PINs and NHI holder data removed\.$/);
    expect(io.stdout[0]).toMatch(/^NHI basic data read and parsed/);
    const text = readFileSync(out, 'utf8');
    expect(statSync(out).mode & 0o777).toBe(0o600); // the citizen's to read and send
    const trace = parseTrace(text);
    expect(trace).toMatchObject({ operation: 'nhi-read', source: 'virtual', outcome: { ok: true } });
    expect(trace.sessions[0]!.cardType).toEqual({ kind: 'nhi' });
    expect(trace.sessions[0]!.exchanges[0]!.command).toBe('00A4040010D1580000010000000000000000001100');
    // The virtual card's holder (王小明, A123456789, card 000011112222) is gone in every spelling.
    for (const secret of ['A123456789', '000011112222', Buffer.from('A123456789').toString('hex').toUpperCase(), Buffer.from('000011112222').toString('hex').toUpperCase(), 'A4FDA470A9FA']) {
      expect(text).not.toContain(secret);
    }
  });

  it('records a MOICA gen 1 signature with the PIN piped in, and the PIN is not in the file', async () => {
    const out = join(dir, 'gen1.json');
    const io = captureIO();
    io.stdin = piped(`${VIRTUAL_TRACE_PIN}\n`);
    expect(await main(['trace', 'moica-sign', '--virtual', 'moica-gen1', '--pin-stdin', '--out', out], io)).toBe(0);
    expect(io.stdout[0]).toMatch(/^MOICA generation 1 card signed 21 bytes: 256-byte PKCS#1 signature$/);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('8C200001' + '20' + '**'.repeat(32));
    expect(text).not.toContain(VIRTUAL_TRACE_PIN);
    expect(text).not.toContain(Buffer.from(VIRTUAL_TRACE_PIN).toString('hex').toUpperCase());
    const verifies = parseTrace(text).sessions.flatMap((s) => s.exchanges).filter((e) => e.command.slice(2, 4) === '20');
    expect(verifies.length).toBeGreaterThan(0);
    for (const v of verifies) expect(v.command.slice(10)).toMatch(/^(\*\*)+$/);
  });

  it('a wrong PIN fails the command but still writes the trace with the error in it', async () => {
    const out = join(dir, 'wrong.json');
    const io = captureIO();
    io.stdin = piped('654321\n');
    expect(await main(['trace', 'moica-sign', '--virtual', 'moica-gen2', '--pin-stdin', '--out', out], io)).toBe(1);
    expect(io.stderr.join('\n')).toMatch(/PinIncorrect/);
    const trace = parseTrace(readFileSync(out, 'utf8'));
    expect(trace.outcome).toMatchObject({ ok: false, error: { code: 'PinIncorrect' } });
  });

  it('explains bad invocations without recording anything', async () => {
    const cases: [string[], RegExp][] = [
      [['trace'], /say which operation to record \(nhi-read, nhi-hsign, moica-read, moica-sign\)/],
      [['trace', 'moica', 'erase', '--out', join(dir, 'x.json')], /unknown operation "moica erase"/],
      [['trace', 'nhi-read'], /--out FILE/],
      [['trace', 'nhi-read', '--virtual', 'moica-gen1', '--out', join(dir, 'x.json')], /nhi-read needs a nhi card, not --virtual moica-gen1/],
      [['trace', 'nhi-read', '--virtual', 'floppy', '--out', join(dir, 'x.json')], /unknown virtual card "floppy"/],
      [['trace', 'moica-sign', '--virtual', 'moica-gen1', '--out', join(dir, 'x.json')], /pipe it in and add --pin-stdin/],
    ];
    for (const [args, message] of cases) {
      const io = captureIO();
      expect(await main(args, io)).toBe(2);
      expect(io.stderr[0]).toMatch(message);
    }
    const io = captureIO();
    expect(await main(['trace', 'nhi-read', '--virtual', 'nhi', '--out', join(dir, 'missing', 'x.json')], io)).toBe(1);
    expect(io.stderr[0]).toMatch(/Cannot write the trace to .*: the directory .* does not exist \[InvalidInput\]/);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });
});
