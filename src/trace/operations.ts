import { CardBridgeError, asCardBridgeError } from '../errors.js';
import type { ReaderRegistry } from '../readers/types.js';
import { MoicaService } from '../services/moica/moica-service.js';
import { NhiService, type NhiServiceOptions } from '../services/nhi/nhi-service.js';
import { TraceRecorder, TracingRegistry } from './recorder.js';
import type { ApduTrace } from './trace-file.js';

/**
 * The operations `cardbridge trace` can record: each is one use case of the services, run as
 * the daemon would run it. Their summaries say what happened without repeating holder data.
 */

export const TRACE_OPERATIONS = ['nhi-read', 'nhi-hsign', 'moica-read', 'moica-sign'] as const;
export type TraceOperation = (typeof TRACE_OPERATIONS)[number];

/** What `moica-sign` signs: a fixed text, so a trace never carries a document of the user's. */
export const TRACE_SIGN_INPUT = Buffer.from('cardbridge field test', 'utf8');
/** What `nhi-hsign` asks the SAM to sign (version 0001 and 16 fixed digits). */
export const TRACE_HSIGN_INPUT = '00011234567890123456';

export interface TraceOperationContext {
  registry: ReaderRegistry;
  reader?: string;
  /** MOICA sign: asked for once the card is found. */
  pin?: () => Promise<string>;
  /** NHI H_Sign: where the SAM is (default: NHI's), or a stand-in for replays. */
  nhi?: NhiServiceOptions;
  /** MOICA drivers' random source (a replay passes the trace's). */
  random?: (length: number) => Buffer;
}

export function isTraceOperation(name: string): name is TraceOperation {
  return (TRACE_OPERATIONS as readonly string[]).includes(name);
}

export function needsPin(operation: TraceOperation): boolean {
  return operation === 'moica-sign';
}

/** Runs one operation; resolves to a one-line summary free of PINs and holder data. */
export async function runTraceOperation(operation: TraceOperation, context: TraceOperationContext): Promise<string> {
  const selector = context.reader === undefined ? {} : { reader: context.reader };
  const moica = () => new MoicaService(context.registry, context.random ? { random: context.random } : {});
  switch (operation) {
    case 'nhi-read': {
      const info = await new NhiService(context.registry).readBasic(selector);
      return `NHI basic data read and parsed (name ${info.nameComplete ? 'fully decoded' : 'with undecodable characters'}, card status ${info.cardTermination === null ? 'not available' : 'read'})`;
    }
    case 'nhi-hsign': {
      const service = new NhiService(context.registry, context.nhi ?? {});
      const value = await service.hSign(TRACE_HSIGN_INPUT, selector);
      return `H_Sign relay done: the SAM returned ${value.length} bytes`;
    }
    case 'moica-read': {
      const service = moica();
      const card = await service.cardInfo(selector);
      const certificates = await service.listCertificates({ reader: card.reader });
      return `MOICA generation ${card.generation} card: ${certificates.length} certificates (${certificates.map((c) => c.facts.role).join(', ')})`;
    }
    case 'moica-sign': {
      if (!context.pin) throw new CardBridgeError('InvalidInput', 'moica-sign needs the PIN');
      const service = moica();
      const card = await service.cardInfo(selector);
      const pin = await context.pin();
      const result = await service.sign({ data: TRACE_SIGN_INPUT, hash: 'sha256', format: 'pkcs1', reader: card.reader }, pin);
      return `MOICA generation ${card.generation} card signed ${TRACE_SIGN_INPUT.length} bytes: ${result.signature.length}-byte PKCS#1 signature`;
    }
  }
}

export interface RecordedOperation {
  trace: ApduTrace;
  summary?: string;
  /** The operation's failure; the trace is still written, with the error in its outcome. */
  error?: CardBridgeError;
}

/**
 * Runs an operation with every card session recorded. A failing operation still yields its
 * trace: the exchange up to the failure is what a field report needs most.
 */
export async function recordOperation(operation: TraceOperation, context: TraceOperationContext, source: ApduTrace['source']): Promise<RecordedOperation> {
  const recorder = new TraceRecorder({ operation, source });
  const registry = new TracingRegistry(context.registry, recorder);
  try {
    const summary = await runTraceOperation(operation, { ...context, registry });
    return { trace: recorder.finish({ ok: true, summary }), summary };
  } catch (e) {
    const error = asCardBridgeError(e);
    return { trace: recorder.finish({ ok: false, error: { code: error.code, message: error.message } }), error };
  }
}
