import { EventEmitter } from 'node:events';
import { CardBridgeError, asCardBridgeError, isCardBridgeError } from '../errors.js';
import { NhiCard } from '../cards/nhi/nhi-card.js';
import { MoicaService } from '../services/moica/moica-service.js';
import { isPinBearing } from '../trace/redact.js';
import { encodeCommand } from '../pcsc/apdu.js';
import type { CardRequest, CardSelector, CardSession, ReaderRegistry, ReaderState } from '../readers/types.js';
import type { Check } from './doctor.js';

/**
 * `cardbridge doctor --card`: a read-only look at each reader and card: the ATR, what card it
 * is, and whether what needs no PIN can be read. It is the first thing a person with a card
 * cardbridge has not seen runs, before `cardbridge trace`. Nothing here can cost a PIN try: the
 * sessions refuse every PIN-bearing command before it reaches the card, and are never
 * exclusive. The report carries no holder data (no name, ID or card number).
 */

/** The registry as `doctor --card` uses it: shared sessions that refuse PIN commands. */
export function readOnlyRegistry(inner: ReaderRegistry): ReaderRegistry {
  const guarded = new (class extends EventEmitter implements ReaderRegistry {
    get serviceAvailable() {
      return inner.serviceAvailable;
    }
    start = () => inner.start();
    stop = () => inner.stop();
    readers = () => inner.readers();
    locate = (selector: CardSelector) => inner.locate(selector);
    locateReaders = (selector: Pick<CardSelector, 'reader'>) => inner.locateReaders(selector);
    withCard<T>(selector: CardRequest, operation: (session: CardSession) => Promise<T>): Promise<T> {
      return inner.withCard({ ...selector, exclusive: false }, (session) =>
        operation({
          reader: session.reader,
          atr: session.atr,
          cardType: session.cardType,
          exclusive: false,
          remember: (key, read) => session.remember(key, read),
          transmit: async (command) => {
            if (isPinBearing(encodeCommand(command))) {
              throw new CardBridgeError('InvalidInput', 'doctor --card never sends a PIN command');
            }
            return session.transmit(command);
          },
        }),
      );
    }
  })();
  return guarded;
}

const NOT_RECOGNISED_FIX =
  'Insert a MOICA citizen certificate (自然人憑證) or NHI card (健保卡) chip first, contacts up. If it is one, record what it answers with "cardbridge trace" and send the file (docs/field-testing.md).';

function problem(e: unknown): string {
  const error = asCardBridgeError(e);
  return `${error.message} [${error.code}]`;
}

async function nhiReads(registry: ReaderRegistry, reader: string): Promise<Check> {
  const title = `Card in ${reader}`;
  try {
    return await registry.withCard({ reader }, async (session) => {
      const card = new NhiCard(session);
      const parts: string[] = [];
      const basic = await card.readBasic();
      parts.push(`basic data: readable and valid${basic.nameComplete ? '' : ' (the name has characters that do not decode)'}`);
      try {
        await card.readTerminationFlag();
        parts.push('card status: readable');
      } catch (e) {
        if (!isCardBridgeError(e, 'CardError')) throw e;
        parts.push(`card status: refused (${problem(e)})`);
      }
      const id = await card.readCardId();
      parts.push(`card id: readable (${id.length} bytes)`);
      return { id: `card:${reader}`, title, status: 'ok' as const, detail: parts.join('; ') };
    });
  } catch (e) {
    return { id: `card:${reader}`, title, status: 'fail', detail: `reading without a PIN failed: ${problem(e)}`, fix: 'Run "cardbridge trace nhi-read --out nhi.json" and send the file (docs/field-testing.md).' };
  }
}

async function moicaReads(registry: ReaderRegistry, reader: string, now: Date): Promise<Check> {
  const title = `Card in ${reader}`;
  try {
    const service = new MoicaService(registry);
    const info = await service.cardInfo({ reader });
    const certificates = await service.listCertificates({ reader });
    const described = certificates.map((c) => {
      const state = now > c.facts.notAfter ? 'expired' : now < c.facts.notBefore ? 'not yet valid' : `valid to ${c.facts.notAfter.toISOString().slice(0, 10)}`;
      return `${c.facts.role} (${state}${c.keyReference !== undefined ? ', key on card' : ''})`;
    });
    return {
      id: `card:${reader}`,
      title,
      status: 'ok',
      detail: `serial number ${info.serialNumber}, version ${info.version}; ${certificates.length} certificates: ${described.join(', ')}`,
    };
  } catch (e) {
    return { id: `card:${reader}`, title, status: 'fail', detail: `reading without a PIN failed: ${problem(e)}`, fix: 'Run "cardbridge trace moica-read --out moica.json" and send the file (docs/field-testing.md).' };
  }
}

function describeCard(r: ReaderState): Check {
  const id = `reader:${r.name}`;
  const title = `Reader ${r.name}`;
  if (!r.card) return { id, title, status: 'info', detail: 'no card inserted' };
  const { kind, generation } = r.card.type;
  if (kind === 'unknown') return { id, title, status: 'warn', detail: `not a card cardbridge knows (ATR ${r.card.atr})`, fix: NOT_RECOGNISED_FIX };
  const what = kind === 'nhi' ? 'NHI card (健保卡)' : `MOICA card (自然人憑證) generation ${generation ?? '?'}`;
  return { id, title, status: 'ok', detail: `${what}, ATR ${r.card.atr}` };
}

/** The checks of `doctor --card`, over a started registry. */
export async function runCardChecks(inner: ReaderRegistry, options: { reader?: string; now?: Date } = {}): Promise<Check[]> {
  if (!inner.serviceAvailable) {
    return [{ id: 'pcsc', title: 'PC/SC service (pcscd)', status: 'fail', detail: 'pcscd is not reachable', fix: 'Start it: "sudo systemctl enable --now pcscd.socket".' }];
  }
  const registry = readOnlyRegistry(inner);
  const readers = registry.readers().filter((r) => options.reader === undefined || r.name === options.reader);
  if (readers.length === 0) {
    return [
      {
        id: 'readers',
        title: 'Card readers',
        status: 'fail',
        detail: options.reader === undefined ? 'no card reader found' : `no reader named "${options.reader}"`,
        fix: 'Plug in the reader; "cardbridge readers" lists the names. If it still does not show, run "cardbridge doctor".',
      },
    ];
  }
  const checks: Check[] = [];
  for (const r of readers) {
    checks.push(describeCard(r));
    if (r.card?.type.kind === 'nhi') checks.push(await nhiReads(registry, r.name));
    if (r.card?.type.kind === 'moica') checks.push(await moicaReads(registry, r.name, options.now ?? new Date()));
  }
  return checks;
}
