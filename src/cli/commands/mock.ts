import { join } from 'node:path';
import { TEST_PKI_FILES, loadOrCreateTestPki } from '../../emulator/moica/test-pki-store.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand, UsageError } from '../io.js';

/**
 * Mock-mode tools for relying-site tests. `mock pki --out DIR` makes (or reuses) the test PKI
 * that `serve --mock --pki DIR` will use, so a back end started first can trust its CA.
 */
export const mockCommand: CliCommand = {
  name: 'mock',
  usage: 'cardbridge mock pki --out DIR',
  help: [
    '',
    'Options:',
    '  --out DIR    where the test PKI lives: made once (CA and card keys, private keys mode 0600), reused after',
    '',
    'Example: cardbridge mock pki --out ./test-pki && cardbridge serve --mock --pki ./test-pki',
  ],
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { out: { type: 'string' } }, true);
    if (positionals.length !== 1 || positionals[0] !== 'pki') throw new UsageError('the only mock command is "cardbridge mock pki --out DIR"');
    if (!values.out) throw new UsageError('mock pki needs --out DIR (the same DIR you give serve --mock --pki)');
    const pki = await loadOrCreateTestPki(values.out);
    io.out(`Test PKI in ${values.out} (TEST ONLY, never trust it outside tests). Holder: ${pki.holder.name}, ID ending ${pki.holder.idLastFour}.`);
    io.out(`CA chain for your back end: ${join(values.out, TEST_PKI_FILES.caBundle)}`);
    io.out(`Root CA:                    ${join(values.out, TEST_PKI_FILES.root)}`);
    io.out(`Issuing CA:                 ${join(values.out, TEST_PKI_FILES.issuing)}`);
    io.out(`Start the daemon with:      cardbridge serve --mock --pki ${values.out}`);
    return EXIT.ok;
  },
};
