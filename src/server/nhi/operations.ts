import { CardBridgeError, asCardBridgeError } from '../../errors.js';
import type { ReaderRegistry } from '../../readers/types.js';
import { NHI_AGENT_VERSION, NHI_SIGN_INPUT_PATTERN, type NhiBasicInfo, type NhiService } from '../../services/nhi/nhi-service.js';
import type { AuditLog } from '../shared/audit.js';
import { type NhiOperation, nhiErrorCode } from './error-codes.js';
import { type RandomSource, checkEnCryptPassword, nhiEnCrypt, nhiSecureBasic } from './legacy-crypto.js';

/** The official agent's version string (`GetVersion:0001`, `{"version":"0001"}`). */
export { NHI_AGENT_VERSION };

/** The length pages require of an H_Sign value. */
export const H_SIGN_LENGTH = 256;

/** What the audit line names as the caller when a request carried no Origin (a local program). */
export const NO_ORIGIN = '(no Origin: local program)';

/** The basic data as the legacy protocols carry it. */
export interface LegacyBasic {
  cardNo: string;
  id: string;
  name: string;
  /** ROC era `YYYMMDD`. */
  birth: string;
  sex: string;
  /** The card_termination flag character; empty when the card would not tell. */
  termination: string;
}

export function legacyBasic(info: NhiBasicInfo): LegacyBasic {
  return {
    cardNo: info.cardNumber,
    id: info.idNumber,
    name: info.name,
    birth: info.birthDateRoc,
    sex: info.sex,
    termination: info.cardTermination ?? '',
  };
}

/** `cardNo,ID,name,birth,sex,X`: the GetBasic reply body and the SecureGetBasic plaintext. */
export function basicCsv(basic: LegacyBasic): string {
  return [basic.cardNo, basic.id, basic.name, basic.birth, basic.sex, basic.termination].join(',');
}

/**
 * How the SAM's 256-byte `si` becomes the protocol's "256 characters": byte for byte, each byte
 * the character with the same code (ISO-8859-1). NHI's real SAM is understood to answer 256
 * printable ASCII characters (the community re-implementation decodes them as ASCII), for
 * which this is the identity; for binary values (the emulated SAM's raw RSA signature) it is
 * still exactly 256 characters and lossless: `charCodeAt(i)` gives byte i back.
 * See docs/compatibility.md.
 */
export function renderHSign(si: Buffer): string {
  if (si.length !== H_SIGN_LENGTH) throw new CardBridgeError('SamError', `The SAM's value is ${si.length} bytes, expected ${H_SIGN_LENGTH}`);
  return si.toString('latin1');
}

/** The inverse of renderHSign, for relying sites and tests. */
export function parseHSign(value: string): Buffer {
  if (value.length !== H_SIGN_LENGTH || /[^\x00-\xff]/.test(value)) throw new CardBridgeError('InvalidInput', 'Not an H_Sign value');
  return Buffer.from(value, 'latin1');
}

export interface NhiLegacyOptions {
  nhi: NhiService;
  audit: AuditLog;
  /** For the status images and the audit line's reader name; optional. */
  registry?: ReaderRegistry;
  /** Today's date for section C (tests fix it). */
  now?: () => Date;
  /** pad78's filler bytes (tests fix them). */
  random?: RandomSource;
}

/** The listener a request came through, for the audit line (`nhi-ws.GetBasic`, …). */
export type NhiListenerName = 'nhi-ws' | 'nhi-http' | 'nhi-https';

/** One request's context: which listener, which site. */
export interface NhiCaller {
  listener: NhiListenerName;
  /** The allowed canonical Origin, or undefined when the request carried none. */
  origin: string | undefined;
}

/** A failure in the protocol's terms: the official numeric code. */
export class NhiFailure extends Error {
  constructor(
    readonly code: string,
    readonly error: CardBridgeError,
  ) {
    super(`${code}: ${error.message}`);
    this.name = 'NhiFailure';
  }
}

function failure(e: unknown, operation: NhiOperation): NhiFailure {
  const error = asCardBridgeError(e);
  return new NhiFailure(nhiErrorCode(error, operation), error);
}

/**
 * The legacy agent's functions, shared by the WebSocket and HTTP listeners: each returns the
 * value the wire needs, or throws an NhiFailure carrying the official code. Every operation that
 * touches the card's personal data (basic data, card id, H_Sign) leaves one audit line.
 */
export class NhiLegacyOperations {
  private readonly now: () => Date;

  constructor(private readonly options: NhiLegacyOptions) {
    this.now = options.now ?? (() => new Date());
  }

  getVersion(): string {
    return NHI_AGENT_VERSION;
  }

  getRandom(): string {
    return this.options.nhi.getRandom();
  }

  async getBasic(caller: NhiCaller): Promise<LegacyBasic> {
    return this.audited(caller, 'GetBasic', async () => {
      const info = await this.options.nhi.readBasic();
      return { value: legacyBasic(info), reader: info.reader };
    });
  }

  /** `random20` is `0001` + 16 digits; anything else fails with 9999 before the card is touched. */
  async hSign(caller: NhiCaller, random20: string): Promise<string> {
    if (!NHI_SIGN_INPUT_PATTERN.test(random20)) {
      throw failure(new CardBridgeError('InvalidInput', 'The random must be "0001" and 16 digits'), 'H_Sign');
    }
    return this.audited(caller, 'H_Sign', async () => {
      const si = await this.options.nhi.hSign(random20);
      return { value: renderHSign(si), reader: this.nhiReader() };
    });
  }

  async enCrypt(caller: NhiCaller, password: string): Promise<string> {
    // The length check comes first, as in the official agent: a bad password never reaches the card.
    try {
      checkEnCryptPassword(password);
    } catch (e) {
      throw failure(e, 'EnCrypt');
    }
    return this.audited(caller, 'EnCrypt', async () => {
      const { cardId, reader } = await this.options.nhi.readCardId();
      return { value: nhiEnCrypt(password, cardId, this.now(), this.options.random), reader };
    });
  }

  /** The password takes no part (as in the published implementation); it is not even checked. */
  async secureGetBasic(caller: NhiCaller): Promise<string> {
    return this.audited(caller, 'SecureGetBasic', async () => {
      const info = await this.options.nhi.readBasic();
      return { value: nhiSecureBasic(basicCsv(legacyBasic(info)), this.now(), this.options.random), reader: info.reader };
    });
  }

  /** Translates any error of `work` to the official code and writes the audit line. */
  private async audited<T>(caller: NhiCaller, operation: NhiOperation, work: () => Promise<{ value: T; reader: string }>): Promise<T> {
    const origin = caller.origin ?? NO_ORIGIN;
    const name = `${caller.listener}.${operation}`;
    try {
      const { value, reader } = await work();
      this.options.audit.record({ origin, operation: name, card: 'nhi', reader, result: 'ok' });
      return value;
    } catch (e) {
      const failed = failure(e, operation);
      this.options.audit.record({ origin, operation: name, card: 'nhi', reader: failed.error.reader ?? this.nhiReader(), result: `${failed.error.code} (${failed.code})` });
      throw failed;
    }
  }

  /** The reader holding an NHI card, for the audit line (empty when unknown). */
  private nhiReader(): string {
    return this.options.registry?.readers().find((r) => r.card?.type.kind === 'nhi')?.name ?? '';
  }
}

/** The code for an error raised outside the operations above (e.g. a refused origin). */
export function failureCode(e: unknown, operation: NhiOperation): string {
  if (e instanceof NhiFailure) return e.code;
  return nhiErrorCode(e, operation);
}
