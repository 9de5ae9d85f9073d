import { maskIdNumber } from '../../cards/nhi/basic-data.js';
import { type NhiBasicInfo, NhiService } from '../../services/nhi/nhi-service.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';
import { openRegistry } from '../reader-source.js';
import { formatTable } from '../table.js';

/** One card type `read` knows; add MOICA here when its driver exists. */
interface CardReadTarget {
  summary: string;
  run(args: string[], io: CliIO): Promise<number>;
}

const READ_OPTIONS = {
  reader: { type: 'string' },
  json: { type: 'boolean' },
  reveal: { type: 'boolean' },
  mock: { type: 'boolean' },
} as const;

function rocDisplay(roc: string): string {
  return `ROC ${roc.slice(0, 3)}/${roc.slice(3, 5)}/${roc.slice(5, 7)}`;
}

/** What `read nhi --json` prints: the ID masked unless revealed. */
export function nhiJson(info: NhiBasicInfo, reveal: boolean) {
  return {
    card: 'nhi',
    reader: info.reader,
    cardNumber: info.cardNumber,
    name: info.name,
    nameComplete: info.nameComplete,
    idNumber: reveal ? info.idNumber : maskIdNumber(info.idNumber),
    idNumberMasked: !reveal,
    birthDate: info.birthDate,
    birthDateRoc: info.birthDateRoc,
    sex: info.sex,
    issueDate: info.issueDate,
    issueDateRoc: info.issueDateRoc,
    cardTermination: info.cardTermination,
  };
}

function printNhi(info: NhiBasicInfo, reveal: boolean, io: CliIO): void {
  io.out(`Health insurance card (健保卡) in ${info.reader}`);
  const rows = [
    ['Card number', info.cardNumber],
    ['Name', info.nameComplete ? info.name : `${info.name}  (some characters could not be decoded: shown as �)`],
    ['ID number', reveal ? info.idNumber : `${maskIdNumber(info.idNumber)}  (--reveal shows it)`],
    ['Birth date', `${info.birthDate}  (${rocDisplay(info.birthDateRoc)})`],
    ['Sex', info.sex === 'M' ? 'M (male)' : 'F (female)'],
    ['Issue date', `${info.issueDate}  (${rocDisplay(info.issueDateRoc)})`],
    ['Card status', info.cardTermination ?? '(not available)'],
  ];
  for (const line of formatTable(['', ''], rows).slice(1)) io.out(`  ${line}`);
}

const nhiTarget: CardReadTarget = {
  summary: 'the basic data of a health insurance card (健保卡)',
  async run(args, io) {
    const { values } = parseCommandArgs(args, READ_OPTIONS);
    const registry = await openRegistry(values.mock ?? false);
    try {
      const service = new NhiService(registry);
      const info = await service.readBasic(values.reader !== undefined ? { reader: values.reader } : {});
      const reveal = values.reveal ?? false;
      if (values.json) io.out(JSON.stringify(nhiJson(info, reveal), null, 2));
      else printNhi(info, reveal, io);
      return EXIT.ok;
    } finally {
      await registry.stop();
    }
  },
};

const moicaTarget: CardReadTarget = {
  summary: 'the certificates of a citizen digital certificate card (自然人憑證) — not implemented yet',
  async run(_args, io) {
    io.err('cardbridge read moica: not implemented yet (the MOICA driver is still being built).');
    return EXIT.usage;
  },
};

/** The card types `read` serves, by the word that names them on the command line. */
export const READ_TARGETS: Record<string, CardReadTarget> = { nhi: nhiTarget, moica: moicaTarget };

export const readCommand: CliCommand = {
  name: 'read',
  summary: 'Read a card: "read nhi" shows the health insurance card\'s basic data',
  usage: 'cardbridge read <nhi|moica> [--reader NAME] [--json] [--reveal] [--mock]',
  async run(args, io) {
    const [kind, ...rest] = args;
    if (kind === undefined || kind.startsWith('-')) throw new UsageError('read: say which card to read: "read nhi" (or "read moica")');
    const target = READ_TARGETS[kind];
    if (!target) throw new UsageError(`read: unknown card "${kind}" (choose from: ${Object.keys(READ_TARGETS).join(', ')})`);
    return target.run(rest, io);
  },
};
