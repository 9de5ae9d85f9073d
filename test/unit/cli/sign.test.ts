import { execFileSync } from 'node:child_process';
import { verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import * as pkijs from 'pkijs';
import { main } from '../../../src/cli/main.js';
import { type CliInput, reportError } from '../../../src/cli/io.js';
import { MAX_SIGN_INPUT_BYTES, createSignCommand } from '../../../src/cli/commands/sign.js';
import { DEMO_MOICA_PIN } from '../../../src/demo/demo-readers.js';
import { getTestPki } from '../../../src/emulator/moica/test-pki.js';
import { captureIO } from '../../helpers/capture-io.js';
import { PIN, READER, setup } from '../moica/helpers.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { TriesTracker } from '../../../src/services/pin/tries-tracker.js';

let dir: string;
let input: string;
const DATA = Buffer.from('契約書 — the document to sign\n');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cardbridge-sign-'));
  input = join(dir, 'document.txt');
  writeFileSync(input, DATA);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A piped stdin holding `text`, then its end. */
function pipedStdin(text: string): CliInput {
  const stream = new PassThrough();
  stream.end(text);
  return stream;
}

/** A terminal-like stdin: keys are queued up front, raw mode is recorded. */
function terminalStdin(keys: string) {
  const stream = new PassThrough() as PassThrough & { isTTY: boolean; setRawMode: jest.Mock<(mode: boolean) => unknown> };
  stream.isTTY = true;
  stream.setRawMode = jest.fn((_mode: boolean) => stream);
  stream.write(keys);
  return stream;
}

function ioWith(stdin?: CliInput) {
  const io = captureIO();
  if (stdin) io.stdin = stdin;
  return io;
}

function opensslVerify(cms: Buffer, caPem: string, detachedContent?: Buffer): Buffer {
  const ca = join(dir, 'ca.pem');
  const sig = join(dir, 'verify.p7s');
  writeFileSync(ca, caPem);
  writeFileSync(sig, cms);
  const args = ['cms', '-verify', '-CAfile', ca, '-in', sig, '-inform', 'DER'];
  if (detachedContent) {
    const content = join(dir, 'verify.bin');
    writeFileSync(content, detachedContent);
    args.push('-content', content, '-binary');
  }
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('cardbridge sign', () => {
  it('writes an attached CMS (DER) to --out that openssl verifies against the test CA', async () => {
    const pki = await getTestPki();
    const out = join(dir, 'attached.p7s');
    const io = ioWith(pipedStdin(`${DEMO_MOICA_PIN}\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', input, '--out', out], io)).toBe(0);
    expect(io.stdout).toEqual([]);
    expect(io.stderr).toHaveLength(1);
    expect(io.stderr[0]).toBe(
      `Signed ${input} (${DATA.length} bytes): cms (attached, DER), sha256, ${readFileSync(out).length}-byte signature written to ${out}; ` +
        'signer 測試一 (card TP03000012345678 in "Mock Reader 1")',
    );
    expect(opensslVerify(readFileSync(out), pki.caBundlePem).equals(DATA)).toBe(true);
  });

  it('makes detached CMS with another hash; the wrong content does not verify', async () => {
    const pki = await getTestPki();
    const out = join(dir, 'detached.p7s');
    const io = ioWith(pipedStdin(`${DEMO_MOICA_PIN}\r\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', input, '--out', out, '--format', 'cms', '--detached', '--hash', 'sha384'], io)).toBe(0);
    expect(io.stderr[0]).toMatch(/: cms \(detached, DER\), sha384, /);
    const cms = readFileSync(out);
    opensslVerify(cms, pki.caBundlePem, DATA);
    expect(() => opensslVerify(cms, pki.caBundlePem, Buffer.concat([DATA, Buffer.from('x')]))).toThrow();
    const signed = pkijs.SignedData.fromBER(pkijs.ContentInfo.fromBER(cms).content.toBER());
    expect(signed.encapContentInfo.eContent).toBeUndefined();
    expect(signed.digestAlgorithms[0]!.algorithmId).toBe('2.16.840.1.101.3.4.2.2'); // sha384
  });

  it('prints a PKCS#1 signature as base64 on stdout; it verifies with the signing certificate', async () => {
    const pki = await getTestPki();
    for (const hash of ['sha1', 'sha256', 'sha512'] as const) {
      const io = ioWith(pipedStdin(DEMO_MOICA_PIN)); // no newline at all: the end of input ends the line
      expect(await main(['sign', '--mock', '--pin-stdin', '--in', input, '--format', 'pkcs1', '--hash', hash], io)).toBe(0);
      expect(io.stdout).toHaveLength(1);
      const signature = Buffer.from(io.stdout[0]!, 'base64');
      expect(signature).toHaveLength(256);
      // the certificate itself (PEM) is the verification key
      expect(verify(hash, DATA, pki.sign.pem, signature)).toBe(true);
      expect(io.stderr[0]).toMatch(new RegExp(`: pkcs1 \\(RSASSA-PKCS1-v1_5\\), ${hash}, 256-byte signature base64 on stdout; signer 測試一 `));
      expect(io.stderr).toHaveLength(1); // the summary line, nothing else
    }
  });

  it('reports a wrong PIN with the tries left and does not retry it', async () => {
    const io = ioWith(pipedStdin('654321\n'));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', input], io)).toBe(1);
    expect(io.stderr[0]).toBe('cardbridge: Wrong PIN: 2 tries left [PinIncorrect]');
    expect(io.stderr.join('\n')).not.toContain('654321');
    expect(io.stdout).toEqual([]);
  });

  it('warns on the last try, gives the unblock hint when blocked, never sends the PIN twice', async () => {
    const { registry, card } = await setup(2, { triesLeft: 2 });
    const command = createSignCommand({ openRegistry: async () => registry });
    const wrong = ioWith(pipedStdin('000000\n'));
    expect(await command.run(['--pin-stdin', '--in', input], wrong)).toBe(1);
    expect(wrong.stderr).toEqual([
      'cardbridge: Wrong PIN: 1 try left [PinIncorrect]',
      '  PIN 碼錯誤 (Wrong PIN)',
      '  → Warning: one try left. Another wrong PIN blocks the card; check the PIN before trying again.',
    ]);
    expect(card.triesLeft).toBe(1); // exactly one VERIFY was spent
    const last = ioWith(pipedStdin('000000\n'));
    const blocked = await command.run(['--pin-stdin', '--in', input], last).catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: 'PinBlocked' });
    expect(reportError(blocked, last)).toBe(1); // what main does with it
    expect(last.stderr[0]).toBe('cardbridge: The card PIN is blocked [PinBlocked]');
    expect(last.stderr[1]).toBe('  PIN 碼已鎖住，請向發卡單位解鎖 (The PIN is blocked; have the issuer unblock it)');
    expect(last.stderr[2]).toMatch(/unblock it at the MOICA CA web site.*用戶代碼/);
    expect(card.triesLeft).toBe(0);
    expect(card.plainVerifyCount).toBe(0);
  });

  it('with one try left (spent on any path) asks at the terminal before the PIN; a piped PIN is refused without a VERIFY', async () => {
    const pki = await getTestPki();
    const state = mkdtempSync(join(dir, 'state-'));
    const { registry, card } = await setup(2);
    // two tries spent elsewhere (e.g. the daemon's HiPKI listener), recorded in the state directory
    const elsewhere = new MoicaService(registry, { tries: TriesTracker.inStateDir(state) });
    for (let i = 0; i < 2; i++) await elsewhere.sign({ data: Buffer.from('x') }, '000000').catch(() => undefined);
    expect(card.triesLeft).toBe(1);
    const command = createSignCommand({ openRegistry: async () => registry, tries: () => TriesTracker.inStateDir(state) });
    const verifies = () => card.received.filter((c) => c[1] === 0x20).length;
    const before = verifies();

    const piped = ioWith(pipedStdin(`${PIN}\n`));
    const refused = await command.run(['--pin-stdin', '--in', input], piped).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'LastTryNeedsConfirmation', hint: expect.stringContaining('at a terminal') });
    expect(verifies()).toBe(before);

    const declined = terminalStdin('no\r');
    const declinedIo = ioWith(declined);
    await expect(command.run(['--in', input], declinedIo)).rejects.toMatchObject({ code: 'Cancelled' });
    expect(declinedIo.stderr.join('\n')).toMatch(/ONE PIN try left/);
    expect(verifies()).toBe(before);

    const stdin = terminalStdin('yes\r');
    const io = ioWith(stdin);
    const out = join(dir, 'last-try.sig');
    const running = command.run(['--in', input, '--format', 'pkcs1', '--out', out], io);
    for (let i = 0; i < 100 && !io.stderr.some((l) => l.startsWith('PIN of')); i++) await new Promise((r) => setTimeout(r, 10));
    stdin.write(`${PIN}\r`);
    expect(await running).toBe(0);
    expect(verify('sha256', DATA, pki.sign.publicKey, readFileSync(out))).toBe(true);
    expect(verifies()).toBe(before + 1);
    expect(card.triesLeft).toBe(3);
  });

  it('never asks for the PIN of a card known to be blocked', async () => {
    const state = mkdtempSync(join(dir, 'state-'));
    const { registry, card } = await setup(2, { triesLeft: 1 });
    await new MoicaService(registry, { tries: TriesTracker.inStateDir(state) }).sign({ data: Buffer.from('x') }, '000000', { confirmLastTry: true }).catch(() => undefined);
    const before = card.received.filter((c) => c[1] === 0x20).length;
    const stdin = terminalStdin(`${PIN}\r`);
    const io = ioWith(stdin);
    const command = createSignCommand({ openRegistry: async () => registry, tries: () => TriesTracker.inStateDir(state) });
    await expect(command.run(['--in', input], io)).rejects.toMatchObject({ code: 'PinBlocked', hint: expect.stringContaining('用戶代碼') });
    expect(io.stderr.join('\n')).not.toMatch(/^PIN of/m);
    expect(card.received.filter((c) => c[1] === 0x20).length).toBe(before);
  });

  it('refuses a badly formed PIN (PinLength) without touching the card', async () => {
    const { registry, card } = await setup(1);
    const opened = jest.fn(async () => registry);
    const command = createSignCommand({ openRegistry: opened });
    const before = card.received.length;
    for (const pin of ['12345', '123456789', '12345a', '123456 ', '']) {
      const io = ioWith(pipedStdin(`${pin}\n`));
      const code = await command.run(['--pin-stdin', '--in', input], io).catch((e: unknown) => e);
      expect(code).toMatchObject({ code: 'PinLength' });
    }
    expect(opened).not.toHaveBeenCalled();
    expect(card.received.length).toBe(before);
    // through main: the vocabulary code and the hint, exit 1
    const io = ioWith(pipedStdin('1234\n'));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', input], io)).toBe(1);
    expect(io.stderr[0]).toBe('cardbridge: The PIN of a citizen certificate card is 6 to 8 digits [PinLength]');
  });

  it('reads the PIN at a terminal without echo, on the card it found', async () => {
    const pki = await getTestPki();
    const { registry, card } = await setup(2, { pin: '24681357' });
    const stdin = terminalStdin('2468x\x7f1357\r');
    const io = ioWith(stdin);
    const out = join(dir, 'typed.sig');
    expect(await createSignCommand({ openRegistry: async () => registry }).run(['--in', input, '--format', 'pkcs1', '--out', out], io)).toBe(0);
    expect(io.stderr[0]).toBe(`PIN of the citizen certificate card ${card.serialNumber} in "${READER}" (not shown; Ctrl+C cancels):`);
    expect(io.stderr[1]).toMatch(/^Signed .*pkcs1/);
    expect(stdin.setRawMode.mock.calls).toEqual([[true], [false]]);
    expect(io.stderr.join('\n')).not.toMatch(/2468|1357/);
    expect(verify('sha256', DATA, pki.sign.publicKey, readFileSync(out))).toBe(true);
  });

  it('Ctrl+C at the PIN prompt cancels (exit 1) and leaves the terminal in cooked mode', async () => {
    const { registry, card } = await setup(2);
    const stdin = terminalStdin('12\x03');
    const io = ioWith(stdin);
    const sent = card.received.length;
    const command = createSignCommand({ openRegistry: async () => registry });
    await expect(command.run(['--in', input], io)).rejects.toMatchObject({ code: 'Cancelled', message: 'Cancelled' });
    expect(stdin.setRawMode.mock.calls).toEqual([[true], [false]]);
    // only the card lookup before the prompt went to the card: no VERIFY
    expect(card.received.slice(sent).some((c) => c[1] === 0x20 || c[1] === 0x82)).toBe(false);
    const viaMain = ioWith(terminalStdin('\x03'));
    expect(await main(['sign', '--mock', '--in', input], viaMain)).toBe(1);
    expect(viaMain.stderr.slice(-2)).toEqual(['cardbridge: Cancelled [Cancelled]', '  已取消 (Cancelled)']);
  });

  it('wants --pin-stdin when stdin is not a terminal', async () => {
    const io = ioWith(pipedStdin(`${PIN}\n`));
    expect(await main(['sign', '--mock', '--in', input], io)).toBe(2);
    expect(io.stderr[0]).toMatch(/standard input is not a terminal.*--pin-stdin/);
    const none = captureIO();
    expect(await main(['sign', '--mock', '--in', input], none)).toBe(2);
  });

  it('says clearly when the input file is missing, a directory or too large', async () => {
    const missing = ioWith(pipedStdin(`${PIN}\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', join(dir, 'nope.txt')], missing)).toBe(1);
    expect(missing.stderr[0]).toBe(`cardbridge: Cannot read the input file "${join(dir, 'nope.txt')}": it does not exist [InvalidInput]`);
    expect(missing.stderr[2]).toBe('  → Check the path given to --in.');
    const directory = ioWith(pipedStdin(`${PIN}\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', dir], directory)).toBe(1);
    expect(directory.stderr[0]).toMatch(/it is a directory \[InvalidInput\]$/);
    const big = join(dir, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, MAX_SIGN_INPUT_BYTES + 1); // sparse: no 64 MiB written
    const large = ioWith(pipedStdin(`${PIN}\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', big], large)).toBe(1);
    expect(large.stderr[0]).toBe(`cardbridge: The input file "${big}" is larger than 64 MiB [InvalidInput]`);
    const noOutDir = ioWith(pipedStdin(`${PIN}\n`));
    expect(await main(['sign', '--mock', '--pin-stdin', '--in', input, '--out', join(dir, 'no', 'such.p7s')], noOutDir)).toBe(1);
    expect(noOutDir.stderr[0]).toMatch(/Cannot write the signature to .*does not exist \[InvalidInput\]$/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('rejects bad options as usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [[], /--in FILE/],
      [['--in', input, '--hash', 'md5'], /unknown hash "md5" \(choose from: sha1, sha256, sha384, sha512\)/],
      [['--in', input, '--format', 'raw'], /unknown format "raw" \(choose from: pkcs1, cms\)/],
      [['--in', input, '--format', 'pkcs1', '--detached'], /--detached applies to --format cms only/],
      [['--in', input, '--bogus'], /bogus/],
    ];
    for (const [args, message] of cases) {
      const io = ioWith(pipedStdin(`${PIN}\n`));
      expect(await main(['sign', '--mock', '--pin-stdin', ...args], io)).toBe(2);
      expect(io.stderr[0]).toMatch(message);
    }
  });

  it('is listed in --help and has usage', async () => {
    const help = captureIO();
    expect(await main(['--help'], help)).toBe(0);
    expect(help.stdout.join('\n')).toMatch(/^\s+sign\s+Sign a file with a citizen certificate card/m);
    const usage = captureIO();
    expect(await main(['sign', '--help'], usage)).toBe(0);
    expect(usage.stdout).toContain(
      'Usage: cardbridge sign --in FILE [--hash sha1|sha256|sha384|sha512] [--format pkcs1|cms] [--detached] [--pin-stdin] [--out FILE] [--reader NAME] [--mock]',
    );
  });
});
