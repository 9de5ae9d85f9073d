import { readFileSync } from 'node:fs';
import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';

const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('cardbridge CLI', () => {
  it('prints the version', async () => {
    const io = captureIO();
    expect(await main(['--version'], io)).toBe(0);
    expect(io.stdout).toEqual([version]);
  });

  it('lists every command in --help', async () => {
    const io = captureIO();
    expect(await main(['--help'], io)).toBe(0);
    const text = io.stdout.join('\n');
    expect(text).toContain(`cardbridge ${version}`);
    expect(text).toMatch(/^\s+readers\s+List card readers/m);
    expect(text).toMatch(/^\s+demo\s+Run the demo/m);
  });

  it('shows help and exits 2 without a command', async () => {
    const io = captureIO();
    expect(await main([], io)).toBe(2);
    expect(io.stdout[0]).toContain('cardbridge');
  });

  it('names an unknown command and points to --help', async () => {
    const io = captureIO();
    expect(await main(['fly'], io)).toBe(2);
    expect(io.stderr).toEqual(['cardbridge: unknown command "fly"', 'Run "cardbridge --help" to see the commands.']);
  });

  it('rejects an unknown option with a usage error, not a stack trace', async () => {
    const io = captureIO();
    expect(await main(['readers', '--bogus'], io)).toBe(2);
    expect(io.stderr[0]).toBe("cardbridge: Unknown option '--bogus'");
    expect(io.stderr.join('\n')).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('gives per-command usage', async () => {
    const io = captureIO();
    expect(await main(['readers', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('Usage: cardbridge readers [--json] [--mock]');
  });

  it('serve --help lists the five listeners with their ports, the configuration file and an example', async () => {
    const io = captureIO();
    expect(await main(['serve', '--help'], io)).toBe(0);
    const text = io.stdout.join('\n');
    for (const [name, url] of [['native', 'https://127.0.0.1:39443'], ['hipki', 'http://127.0.0.1:61161'], ['nhi-ws', 'https://127.0.0.1:7777'], ['nhi-http', 'http://127.0.0.1:59001'], ['nhi-https', 'https://127.0.0.1:59002']]) {
      expect(text).toMatch(new RegExp(`^\\s+${name}\\s+${url}\\s+\\S`, 'm'));
    }
    expect(text).toContain('/etc/cardbridge/config.json');
    expect(text).toContain('--state-dir DIR');
    expect(text).toMatch(/^Example: cardbridge serve/m);
  });

  it('doctor --help explains every option with an example', async () => {
    const io = captureIO();
    expect(await main(['doctor', '--help'], io)).toBe(0);
    const text = io.stdout.join('\n');
    for (const option of ['--json', '--config FILE', '--state-dir DIR', '--system-store DIR|none', '--home DIR']) expect(text).toMatch(new RegExp(`^\\s+${option.replace('|', '\\|')}\\s+\\S`, 'm'));
    expect(text).toMatch(/^Example: sudo cardbridge doctor/m);
  });

  it('every command\'s --help explains each option of its usage line and gives an example', async () => {
    const { COMMANDS } = await import('../../../src/cli/commands/index.js');
    for (const entry of COMMANDS) {
      const command = await entry.load();
      expect(command.name).toBe(entry.name);
      const io = captureIO();
      expect(await main([command.name, '--help'], io)).toBe(0);
      const text = io.stdout.join('\n');
      const options = [...command.usage.matchAll(/--[a-z-]+/g)].map((m) => m[0]);
      for (const option of options) expect([command.name, option, text]).toEqual([command.name, option, expect.stringMatching(new RegExp(`^\\s+${option}\\b.*\\S`, 'm'))]);
      expect([command.name, text]).toEqual([command.name, expect.stringMatching(/^Example: (sudo )?cardbridge /m)]);
    }
  });

  it('lists the mock readers as a table and as JSON', async () => {
    const table = captureIO();
    expect(await main(['readers', '--mock'], table)).toBe(0);
    expect(table.stdout[0]).toMatch(/^READER\s+CARD\s+TYPE\s+ATR$/);
    expect(table.stdout.some((l) => /^Mock Reader 0\s+present/.test(l))).toBe(true);
    expect(table.stdout.some((l) => /^Mock Reader 1\s+/.test(l))).toBe(true);

    const json = captureIO();
    expect(await main(['readers', '--mock', '--json'], json)).toBe(0);
    const parsed = JSON.parse(json.stdout.join('\n')) as { available: boolean; readers: { name: string; cardPresent: boolean }[] };
    expect(parsed.available).toBe(true);
    expect(parsed.readers.map((r) => r.name)).toEqual(['Mock Reader 0', 'Mock Reader 1']);
    expect(parsed.readers[0]!.cardPresent).toBe(true);
  });
});
