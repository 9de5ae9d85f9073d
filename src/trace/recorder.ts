import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { asCardBridgeError } from '../errors.js';
import { type CommandApdu, type ResponseApdu, encodeCommand, encodeResponse } from '../pcsc/apdu.js';
import type { CardTransport } from '../pcsc/transport.js';
import type { CardLocation, CardRequest, CardSelector, CardSession, CardType, ReaderRegistry, ReaderState, RegistryEvent } from '../readers/types.js';
import { VERSION } from '../version.js';
import { SessionRedactor } from './redact.js';
import { type ApduTrace, TRACE_FORMAT, type TraceExchange, type TraceOutcome, type TraceSession, patternToHex, toHex } from './trace-file.js';

/** What every trace says it removed; the redactor's rules in words. */
export const TRACE_PRIVACY_NOTES = [
  'Every PIN-bearing command (plain VERIFY, protected VERIFY, secure-messaging VERIFY, PIN change/unblock) has its data replaced by ** (removed bytes).',
  'After a PIN went through a secure channel, the MAC of every later command of that channel is removed too (the PIN could be searched for with it).',
  'NHI card: the basic data (card number, name, ID number, birth date, sex, issue date) and the card id are replaced by a fake holder of the same length; the card status data keeps only its first character.',
  'MOICA card: the certificates are recorded as the card holds them (they carry the holder name and the last four ID characters, as every signature does).',
] as const;

export interface TraceRecorderOptions {
  operation: string;
  source: ApduTrace['source'];
  /** Milliseconds clock for timing (default performance.now). */
  clock?: () => number;
  /** Wall clock for `recordedAt`. */
  now?: () => Date;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Records the APDU exchanges of one operation, redacted as they happen (the unredacted PIN
 * command is never stored), and builds the trace file once the operation ends.
 */
export class TraceRecorder {
  readonly sessions: TraceSession[] = [];
  readonly #clock: () => number;
  readonly #started: number;
  readonly #options: TraceRecorderOptions;

  constructor(options: TraceRecorderOptions) {
    this.#options = options;
    this.#clock = options.clock ?? (() => performance.now());
    this.#started = this.#clock();
  }

  /** Starts a new session and returns `transport` wrapped so its exchanges land in it. */
  record(info: { reader: string; atr: Uint8Array; cardType: CardType; exclusive: boolean }, transport: CardTransport): CardTransport {
    const session: TraceSession = { reader: info.reader, atr: toHex(info.atr), cardType: { ...info.cardType }, exclusive: info.exclusive, exchanges: [] };
    this.sessions.push(session);
    const redactor = new SessionRedactor();
    return {
      transmit: async (command: CommandApdu): Promise<ResponseApdu> => {
        const bytes = encodeCommand(command);
        const redacted = redactor.command(bytes);
        const start = this.#clock();
        const exchange: TraceExchange = { atMs: round(start - this.#started), durationMs: 0, command: patternToHex(redacted.pattern) };
        const notes = redacted.redaction ? [redacted.redaction] : [];
        session.exchanges.push(exchange);
        try {
          const response = await transport.transmit(command);
          const shown = redactor.response(bytes, encodeResponse(response));
          exchange.response = toHex(shown.response);
          if (shown.redaction) notes.push(shown.redaction);
          return response;
        } catch (e) {
          exchange.error = asCardBridgeError(e).message;
          throw e;
        } finally {
          exchange.durationMs = round(this.#clock() - start);
          if (notes.length) exchange.redaction = notes.join('; ');
        }
      },
    };
  }

  finish(outcome: TraceOutcome): ApduTrace {
    return {
      format: TRACE_FORMAT,
      operation: this.#options.operation,
      recordedAt: (this.#options.now?.() ?? new Date()).toISOString(),
      cardbridgeVersion: VERSION,
      source: this.#options.source,
      privacy: [...TRACE_PRIVACY_NOTES],
      sessions: this.sessions,
      outcome,
    };
  }
}

/**
 * A registry that hands out recorded sessions: everything the services send through
 * `withCard` goes into the recorder. Card recognition on insertion happens inside the wrapped
 * registry and is not part of the trace (the ATR and the type it found are).
 */
export class TracingRegistry extends EventEmitter implements ReaderRegistry {
  constructor(
    private readonly inner: ReaderRegistry,
    readonly recorder: TraceRecorder,
  ) {
    super();
    this.inner.on('event', (event: RegistryEvent) => this.emit('event', event));
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  get serviceAvailable(): boolean {
    return this.inner.serviceAvailable;
  }

  readers(): ReaderState[] {
    return this.inner.readers();
  }

  locate(selector: CardSelector): Promise<CardLocation> {
    return this.inner.locate(selector);
  }

  locateReaders(selector: Pick<CardSelector, 'reader'>): ReaderState[] {
    return this.inner.locateReaders(selector);
  }

  withCard<T>(selector: CardRequest, operation: (session: CardSession) => Promise<T>): Promise<T> {
    return this.inner.withCard(selector, (session) => {
      const recorded = this.recorder.record(session, session);
      const traced: CardSession = {
        reader: session.reader,
        atr: session.atr,
        cardType: session.cardType,
        exclusive: session.exclusive,
        transmit: (command) => recorded.transmit(command),
        // What the card answered once per insertion is answered from memory, as in the daemon:
        // the trace shows what a real operation sends (a read inside `read` is recorded).
        remember: (key, read) => session.remember(key, read),
      };
      return operation(traced);
    });
  }
}
