import { isCardBridgeError } from '../../errors.js';
import { describeCardType } from '../../cards/index.js';
import type { ReaderState } from '../../readers/types.js';
import { parseCommandArgs } from '../args.js';
import { EXIT, type CliCommand } from '../io.js';
import { openRegistry } from '../reader-source.js';
import { formatTable } from '../table.js';

export { describeCardType };

function toJson(reader: ReaderState) {
  return {
    name: reader.name,
    cardPresent: reader.card !== undefined,
    atr: reader.card?.atr ?? null,
    card: reader.card ? { ...reader.card.type, label: reader.card.label } : null,
  };
}

export const readersCommand: CliCommand = {
  name: 'readers',
  usage: 'cardbridge readers [--json] [--mock]',
  help: [
    '',
    'Options:',
    '  --json  print {available, readers: [{name, cardPresent, atr, card}]} as JSON',
    '  --mock  the virtual readers and cards instead of pcscd',
    '',
    'Example: cardbridge readers --json',
  ],
  async run(args, io) {
    const { values } = parseCommandArgs(args, { json: { type: 'boolean' }, mock: { type: 'boolean' } });
    let registry: Awaited<ReturnType<typeof openRegistry>>;
    try {
      registry = await openRegistry(values.mock ?? false);
    } catch (e) {
      // Scripts reading --json still get JSON when PC/SC support itself is missing.
      if (values.json && isCardBridgeError(e)) io.out(JSON.stringify({ available: false, error: e.message, hint: e.hint ?? null, readers: [] }, null, 2));
      throw e;
    }
    try {
      const readers = registry.readers();
      if (!registry.serviceAvailable) {
        const error = registry.serviceError ?? 'the smart-card service is not reachable';
        if (values.json) io.out(JSON.stringify({ available: false, error, readers: [] }, null, 2));
        io.err(`cardbridge: pcscd is not reachable: ${error}`);
        io.err('  → Start it: "sudo systemctl start pcscd.socket" (or run "pcscd" as root).');
        return EXIT.environment;
      }
      if (values.json) {
        io.out(JSON.stringify({ available: true, readers: readers.map(toJson) }, null, 2));
        return EXIT.ok;
      }
      if (readers.length === 0) {
        io.out('No card readers found. Plug in a reader (pcscd sees it within a second or two).');
        return EXIT.ok;
      }
      const rows = readers.map((r) => [r.name, r.card ? 'present' : 'empty', r.card ? describeCardType(r.card.type) : '-', r.card?.atr ?? '-']);
      for (const line of formatTable(['READER', 'CARD', 'TYPE', 'ATR'], rows)) io.out(line);
      return EXIT.ok;
    } finally {
      await registry.stop();
    }
  },
};
