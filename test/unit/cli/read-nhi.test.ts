import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';

describe('cardbridge read nhi', () => {
  it('prints a readable summary with the ID masked', async () => {
    const io = captureIO();
    expect(await main(['read', 'nhi', '--mock'], io)).toBe(0);
    const text = io.stdout.join('\n');
    expect(io.stdout[0]).toBe('Health insurance card (健保卡) in Mock Reader 0');
    expect(text).toMatch(/Card number\s+000011112222/);
    expect(text).toMatch(/Name\s+王小明$/m);
    expect(text).toMatch(/ID number\s+A12345\*\*\*\*/);
    expect(text).not.toContain('A123456789');
    expect(text).toMatch(/Birth date\s+1985-03-15 {2}\(ROC 074\/03\/15\)/);
    expect(text).toMatch(/Sex\s+M \(male\)/);
    expect(text).toMatch(/Issue date\s+2015-06-01 {2}\(ROC 104\/06\/01\)/);
    expect(io.stderr).toEqual([]);
  });

  it('--reveal shows the ID', async () => {
    const io = captureIO();
    expect(await main(['read', 'nhi', '--mock', '--reveal'], io)).toBe(0);
    expect(io.stdout.join('\n')).toMatch(/ID number\s+A123456789$/m);
  });

  it('--json prints the object, masked unless --reveal', async () => {
    const io = captureIO();
    expect(await main(['read', 'nhi', '--mock', '--json'], io)).toBe(0);
    const parsed = JSON.parse(io.stdout.join('\n')) as Record<string, unknown>;
    expect(parsed).toEqual({
      card: 'nhi',
      reader: 'Mock Reader 0',
      cardNumber: '000011112222',
      name: '王小明',
      nameComplete: true,
      idNumber: 'A12345****',
      idNumberMasked: true,
      birthDate: '1985-03-15',
      birthDateRoc: '0740315',
      sex: 'M',
      issueDate: '2015-06-01',
      issueDateRoc: '1040601',
      cardTermination: '0',
    });
    const revealed = captureIO();
    expect(await main(['read', 'nhi', '--mock', '--json', '--reveal', '--reader', 'Mock Reader 0'], revealed)).toBe(0);
    expect(JSON.parse(revealed.stdout.join('\n'))).toMatchObject({ idNumber: 'A123456789', idNumberMasked: false });
  });

  it('fails with the vocabulary code for a reader without an NHI card', async () => {
    const io = captureIO();
    expect(await main(['read', 'nhi', '--mock', '--reader', 'Mock Reader 1'], io)).toBe(1);
    // Mock Reader 1 holds the demo's virtual MOICA card.
    expect(io.stderr[0]).toBe('cardbridge: The inserted card is not a health insurance card (健保卡) (found: moica) [WrongCard]');
    expect(io.stdout).toEqual([]);
    const missing = captureIO();
    expect(await main(['read', 'nhi', '--mock', '--reader', 'Nope'], missing)).toBe(1);
    expect(missing.stderr[0]).toBe('cardbridge: No reader named "Nope" [NoReader]');
    // the catalogue's words for the code, Traditional Chinese first
    expect(missing.stderr[1]).toBe('  找不到讀卡機 (No card reader found)');
  });

  it('needs to know which card, and knows only nhi and moica', async () => {
    const none = captureIO();
    expect(await main(['read'], none)).toBe(2);
    expect(none.stderr[0]).toMatch(/say which card to read/);
    const unknown = captureIO();
    expect(await main(['read', 'passport'], unknown)).toBe(2);
    expect(unknown.stderr[0]).toMatch(/unknown card "passport" \(choose from: nhi, moica\)/);
    const bogus = captureIO();
    expect(await main(['read', 'nhi', '--bogus'], bogus)).toBe(2);
  });

  it('is listed in --help and has usage', async () => {
    const help = captureIO();
    expect(await main(['--help'], help)).toBe(0);
    expect(help.stdout.join('\n')).toMatch(/^\s+read\s+Read a card/m);
    const usage = captureIO();
    expect(await main(['read', '--help'], usage)).toBe(0);
    expect(usage.stdout).toContain('Usage: cardbridge read <nhi|moica> [--reader NAME] [--json] [--reveal] [--mock]');
  });
});
