import { maskIdNumber } from '../../cards/nhi/basic-data.js';
import { type NhiBasicInfo, NhiService } from '../../services/nhi/nhi-service.js';
import type { MoicaCertificate } from '../../cards/moica/moica-card.js';
import { type MoicaCardSummary, MoicaService } from '../../services/moica/moica-service.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, type CliIO, UsageError } from '../io.js';
import { openRegistry } from '../reader-source.js';
import { formatTable } from '../table.js';

/** One card type `read` knows. */
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

const ROLE_NAMES: Record<MoicaCertificate['facts']['role'], string> = {
  sign: 'signature certificate',
  encrypt: 'encryption certificate',
  ca: 'CA certificate',
};

function isoTime(date: Date): string {
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

/** What `read moica --json` prints: the card, then each certificate's facts. */
export function moicaJson(card: MoicaCardSummary, certificates: MoicaCertificate[], now: Date = new Date()) {
  const holder = certificates.find((c) => c.facts.role !== 'ca' && c.facts.holderName !== undefined)?.facts;
  return {
    card: 'moica',
    reader: card.reader,
    serialNumber: card.serialNumber,
    generation: card.generation,
    version: card.version,
    holderName: holder?.holderName ?? null,
    idLastFour: holder?.idLastFour ?? null,
    certificates: certificates.map((c) => ({
      id: c.id,
      label: c.label ?? null,
      role: c.facts.role,
      holderName: c.facts.role === 'ca' ? null : (c.facts.holderName ?? null),
      idLastFour: c.facts.idLastFour ?? null,
      subject: c.facts.subject,
      issuer: c.facts.issuer,
      serialNumber: c.facts.serialNumber,
      notBefore: isoTime(c.facts.notBefore),
      notAfter: isoTime(c.facts.notAfter),
      expired: now.getTime() > c.facts.notAfter.getTime(),
      notYetValid: now.getTime() < c.facts.notBefore.getTime(),
      keyUsage: c.facts.keyUsage,
      privateKeyOnCard: c.keyReference !== undefined,
      publicKeyChecked: c.publicKeyChecked,
      sha256: c.facts.sha256,
    })),
  };
}

function printMoica(json: ReturnType<typeof moicaJson>, io: CliIO): void {
  io.out(`Citizen certificate card (自然人憑證) in ${json.reader}`);
  const card = [
    ['Serial number', json.serialNumber],
    ['Generation', json.generation === 2 ? '2 (applet with secure channel)' : '1'],
    ['Version', json.version],
  ];
  if (json.holderName !== null) card.push(['Holder', json.idLastFour === null ? json.holderName : `${json.holderName}  (ID ends in ${json.idLastFour})`]);
  for (const line of formatTable(['', ''], card).slice(1)) io.out(`  ${line}`);
  io.out('');
  io.out(`Certificates (${json.certificates.length}):`);
  for (const c of json.certificates) {
    const validity = c.expired ? 'EXPIRED' : c.notYetValid ? 'NOT YET VALID' : 'valid';
    const rows = [
      c.role === 'ca' ? ['Subject', c.subject] : ['Holder', c.idLastFour === null ? (c.holderName ?? c.subject) : `${c.holderName ?? c.subject}  (ID ends in ${c.idLastFour})`],
      ['Issuer', c.issuer],
      ['Valid', `${c.notBefore} to ${c.notAfter}  (${validity})`],
      ['Key usage', c.keyUsage.length > 0 ? c.keyUsage.join(', ') : '(none stated)'],
      ['Serial', c.serialNumber],
    ];
    io.out(`  ${c.id}: ${ROLE_NAMES[c.role]} (${c.role})${c.privateKeyOnCard ? ', private key on the card' : ''}`);
    for (const line of formatTable(['', ''], rows).slice(1)) io.out(`    ${line}`);
  }
}

const moicaTarget: CardReadTarget = {
  summary: 'the certificates of a citizen digital certificate card (自然人憑證)',
  async run(args, io) {
    const { values } = parseCommandArgs(args, READ_OPTIONS);
    if (values.reveal) throw new UsageError('read moica: --reveal applies to "read nhi" only (a MOICA card holds only the last four ID characters)');
    const registry = await openRegistry(values.mock ?? false);
    try {
      const service = new MoicaService(registry);
      const card = await service.cardInfo(values.reader !== undefined ? { reader: values.reader } : {});
      // The same reader for the certificates, so both halves describe one card.
      const certificates = await service.listCertificates({ reader: card.reader });
      const json = moicaJson(card, certificates);
      if (values.json) io.out(JSON.stringify(json, null, 2));
      else printMoica(json, io);
      return EXIT.ok;
    } finally {
      await registry.stop();
    }
  },
};

/** The card types `read` serves, by the word that names them on the command line. */
export const READ_TARGETS: Record<string, CardReadTarget> = { nhi: nhiTarget, moica: moicaTarget };

export const readCommand: CliCommand = {
  name: 'read',
  usage: 'cardbridge read <nhi|moica> [--reader NAME] [--json] [--reveal] [--mock]',
  help: [
    '',
    'Options:',
    '  --reader NAME  the reader to use (default: the one holding that kind of card)',
    '  --json         print the data as JSON',
    '  --reveal       show the ID number in full (default: masked)',
    '  --mock         the virtual readers and cards instead of pcscd',
    '',
    'Example: cardbridge read nhi --json',
  ],
  async run(args, io) {
    const [kind, ...rest] = args;
    if (kind === undefined || kind.startsWith('-')) throw new UsageError('read: say which card to read: "read nhi" (or "read moica")');
    const target = READ_TARGETS[kind];
    if (!target) throw new UsageError(`read: unknown card "${kind}" (choose from: ${Object.keys(READ_TARGETS).join(', ')})`);
    return target.run(rest, io);
  },
};
