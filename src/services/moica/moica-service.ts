import { constants, createHash, publicDecrypt, X509Certificate } from 'node:crypto';
import { CardBridgeError } from '../../errors.js';
import type { CardSession, ReaderRegistry } from '../../readers/types.js';
import { type Pkcs1HashName, pkcs1DigestLength, pkcs1Type1Pad, pkcs1v15SignatureBlock } from '../../crypto/pkcs1.js';
import { createCmsSignedData } from '../../crypto/cms.js';
import { TriesTracker } from '../pin/tries-tracker.js';
import { moicaProfile } from '../../cards/moica/profile.js';
import {
  MOICA_MODULUS_LENGTH,
  type MoicaCard,
  type MoicaCardInfo,
  type MoicaCertificate,
  type MoicaDriverOptions,
  MOICA_UNBLOCK_HINT,
  assertMoicaPin,
} from '../../cards/moica/moica-card.js';

/**
 * MOICA use cases over the reader registry: card information, certificates, signing (PKCS#1,
 * CMS, raw) and decryption. PIN operations hold the card exclusively and the registry resets
 * it afterwards, so nothing else can use the verified PIN.
 */

export type MoicaSignFormat = 'pkcs1' | 'cms' | 'raw';

export interface MoicaCardSelector {
  /** A reader by name; default: the first reader holding a MOICA card. */
  reader?: string;
  /**
   * The card's own number (cardInfo's serialNumber, HiPKI's `cardSN`; letters in any case):
   * only that card serves, wherever it is, and is checked inside the operation's own session,
   * before any PIN, so a card swapped in meanwhile is refused (NoCard) instead of used.
   */
  serialNumber?: string;
}

export interface MoicaSignRequest extends MoicaCardSelector {
  /** The data to sign (hashed here), or for `raw` the bytes to sign as they are. */
  data?: Uint8Array;
  /** A precomputed digest under `hash` (pkcs1 and detached cms). */
  digest?: Uint8Array;
  hash?: Pkcs1HashName;
  /**
   * `pkcs1`: RSASSA-PKCS1-v1_5 signature of the data/digest.
   * `cms`: DER ContentInfo/SignedData (attached when `data` is given unless `detached`).
   * `raw`: PKCS#1 v1.5 type-1 padding around `data` itself, no DigestInfo (legacy pages that
   * build DigestInfo or TLS-style MD5‖SHA-1 themselves). Never an unpadded private operation.
   */
  format?: MoicaSignFormat;
  /** cms only. */
  detached?: boolean;
  /** cms only: include the signingTime attribute (default true). */
  signingTime?: boolean;
  /** cms only: also include the card's CA certificates (default true). */
  includeChain?: boolean;
  /**
   * The caller's own conditions on the signing certificate (a protocol's key id, validity),
   * checked inside the same exclusive session before the PIN is spent. Throws to refuse.
   */
  checkSigningKey?: (key: MoicaCertificate) => void;
}

export interface MoicaSignResult {
  format: MoicaSignFormat;
  hash: Pkcs1HashName;
  /** The signature (pkcs1, raw) or the DER CMS ContentInfo (cms). */
  signature: Buffer;
  /** DER certificate of the key that signed. */
  certificate: Buffer;
  reader: string;
  serialNumber: string;
}

export interface MoicaCardSummary extends MoicaCardInfo {
  reader: string;
}

export interface MoicaServiceOptions extends MoicaDriverOptions {
  /** Clock for CMS signingTime. */
  now?: () => Date;
  /**
   * The cards' PIN tries left, consulted before and fed after every VERIFY. The daemon and the
   * CLI pass the state directory's; default: one in memory, so the rules hold within a process.
   */
  tries?: TriesTracker;
}

/** How the caller may spend the PIN. */
export interface PinUse {
  /**
   * The user confirmed, in cardbridge's own window (or terminal), that this may be the card's
   * last try. Edges set it only from cardbridge's own UI, never from a web page's request.
   */
  confirmLastTry?: boolean;
}

export interface MoicaPinStatus {
  /** false: no failed VERIFY seen since the last success (the card may have its full count). */
  known: boolean;
  triesLeft?: number;
  blocked: boolean;
  serialNumber: string;
  reader: string;
}

/** PKCS#1 v1.5 type-1 needs at least 11 bytes of overhead. */
const MAX_RAW_LENGTH = MOICA_MODULUS_LENGTH - 11;

function sameSerial(a: string, b: string): boolean {
  return a.trim().toUpperCase() === b.trim().toUpperCase();
}

/** The number is not repeated in the message: it goes to logs and to pages that did not send it. */
function namedCardMissing(reader?: string): CardBridgeError {
  return new CardBridgeError('NoCard', reader === undefined ? 'The card asked for is not inserted' : `The card in "${reader}" is not the card asked for`, {
    hint: 'Insert the card the page asked for (or let the page choose again).',
    ...(reader === undefined ? {} : { reader }),
  });
}

function invalid(message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', message);
}


/** The key that signs: the `SIGN` object, else any signing-role certificate with a private key. */
export function signingKey(certificates: readonly MoicaCertificate[]): MoicaCertificate & { keyReference: number } {
  return findKey(certificates, 'SIGN', 'sign');
}

function findKey(certificates: readonly MoicaCertificate[], id: string, role: 'sign' | 'encrypt'): MoicaCertificate & { keyReference: number } {
  const match =
    certificates.find((c) => c.id === id && c.keyReference !== undefined) ??
    certificates.find((c) => c.facts.role === role && c.keyReference !== undefined);
  if (!match || match.keyReference === undefined) {
    throw new CardBridgeError('UnsupportedCard', `The card has no ${role === 'sign' ? 'signing' : 'encryption'} key`);
  }
  return match as MoicaCertificate & { keyReference: number };
}

/**
 * Checks the card's answer against the certificate before anyone relies on it: a card whose
 * key does not match its certificate would otherwise hand out signatures nobody can verify.
 */
function checkSignature(certificate: Buffer, block: Buffer, signature: Buffer): void {
  const recovered = publicDecrypt({ key: new X509Certificate(certificate).publicKey, padding: constants.RSA_NO_PADDING }, signature);
  if (!recovered.equals(block)) {
    throw new CardBridgeError('ProtocolError', 'The card produced a signature that does not verify with its certificate');
  }
}

export class MoicaService {
  readonly #registry: ReaderRegistry;
  readonly #options: MoicaServiceOptions;
  readonly #tries: TriesTracker;

  constructor(registry: ReaderRegistry, options: MoicaServiceOptions = {}) {
    this.#registry = registry;
    this.#options = options;
    this.#tries = options.tries ?? TriesTracker.inMemory();
  }

  /** What is known about the PIN of the card `selector` picks, for a window to show before asking. */
  pinStatus(selector: MoicaCardSelector = {}): Promise<MoicaPinStatus> {
    return this.#withCard(selector, false, async (card, session) => {
      const { serialNumber } = await this.#cardInfo(card, session);
      return { ...(await this.#tries.status(serialNumber)), serialNumber, reader: session.reader };
    });
  }

  /**
   * Every VERIFY goes through here: a card known to be blocked is never sent one, the last try
   * is spent only with the caller's confirmation, and the card's answer updates the count.
   */
  async #withPin<T>(serialNumber: string, use: PinUse, operation: () => Promise<T>): Promise<T> {
    const status = await this.#tries.status(serialNumber);
    if (status.blocked) {
      throw new CardBridgeError('PinBlocked', 'The card PIN is blocked; cardbridge did not send the PIN', { triesLeft: 0, hint: MOICA_UNBLOCK_HINT });
    }
    if (status.known && status.triesLeft === 1 && use.confirmLastTry !== true) {
      throw new CardBridgeError('LastTryNeedsConfirmation', 'The card has one PIN try left; cardbridge did not send the PIN', {
        triesLeft: 1,
        hint: 'A wrong PIN now blocks the card. Confirm the last try in cardbridge’s own window (最後一次機會，請在 cardbridge 視窗確認).',
      });
    }
    let result: T;
    try {
      result = await operation();
    } catch (e) {
      if (e instanceof CardBridgeError) await this.#remember(() => this.#tries.recordFailure(serialNumber, e));
      throw e;
    }
    await this.#remember(() => this.#tries.recordSuccess(serialNumber));
    return result;
  }

  /** A count that cannot be saved must not hide the card's own answer; it is reported instead. */
  async #remember(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (e) {
      (this.#options.warn ?? ((m, d) => process.emitWarning(m, { code: 'CARDBRIDGE_PIN_TRIES', detail: JSON.stringify(d) })))(
        'Could not save the PIN tries left',
        { error: (e as Error).message },
      );
    }
  }

  async #withCard<T>(selector: MoicaCardSelector, exclusive: boolean, fn: (card: MoicaCard, session: CardSession) => Promise<T>): Promise<T> {
    const wanted = selector.serialNumber;
    const reader = selector.reader ?? (wanted === undefined ? undefined : await this.#readerHolding(wanted));
    const choice = reader === undefined ? { kind: 'moica' as const, exclusive } : { kind: 'moica' as const, exclusive, reader };
    return this.#registry.withCard(choice, async (session) => {
      const card = moicaProfile.open(session, session.cardType, this.#options);
      // Checked again here, in the session that will send the PIN: the card found above may
      // have been swapped for another since.
      if (wanted !== undefined && !sameSerial((await this.#cardInfo(card, session)).serialNumber, wanted)) throw namedCardMissing(session.reader);
      return fn(card, session);
    });
  }

  /**
   * The reader holding the MOICA card numbered `serialNumber`. The registry knows cards by
   * their ATR only; the number is read by the MOICA driver (and remembered per insertion), so
   * this choice is made here rather than in the registry's `locate`.
   */
  async #readerHolding(serialNumber: string): Promise<string> {
    for (const reader of this.#registry.locateReaders({})) {
      if (reader.card?.type.kind !== 'moica') continue;
      try {
        const info = await this.#registry.withCard({ kind: 'moica', reader: reader.name }, (session) =>
          this.#cardInfo(moicaProfile.open(session, session.cardType, this.#options), session),
        );
        if (sameSerial(info.serialNumber, serialNumber)) return reader.name;
      } catch {
        // A card that cannot be read now is not known to be the one asked for: look further.
      }
    }
    throw namedCardMissing();
  }

  // What cannot change while the card stays in is read once per insertion (CardSession.remember).

  #cardInfo(card: MoicaCard, session: CardSession): Promise<MoicaCardInfo> {
    return session.remember('moica.card-info', async () => Object.freeze(await card.cardInfo()));
  }

  /** Cross-checked against the card's key records, for showing; `keys` skips that for signing and decrypting. */
  #certificates(card: MoicaCard, session: CardSession, use: 'show' | 'keys'): Promise<readonly MoicaCertificate[]> {
    return use === 'show'
      ? session.remember('moica.certificates', async () => Object.freeze(await card.listCertificates()))
      : session.remember('moica.keys', async () => Object.freeze(await card.listCertificates({ crossCheck: false })));
  }

  cardInfo(selector: MoicaCardSelector = {}): Promise<MoicaCardSummary> {
    return this.#withCard(selector, false, async (card, session) => ({ ...(await this.#cardInfo(card, session)), reader: session.reader }));
  }

  listCertificates(selector: MoicaCardSelector = {}): Promise<MoicaCertificate[]> {
    return this.#withCard(selector, false, async (card, session) => [...(await this.#certificates(card, session, 'show'))]);
  }

  async sign(request: MoicaSignRequest, pin: string, use: PinUse = {}): Promise<MoicaSignResult> {
    assertMoicaPin(pin);
    const format = request.format ?? 'pkcs1';
    const hash = request.hash ?? 'sha256';
    if (!['pkcs1', 'cms', 'raw'].includes(format)) throw invalid(`Unknown signature format '${String(format)}'`);
    const data = request.data === undefined ? undefined : Buffer.from(request.data);
    let digest = request.digest === undefined ? undefined : Buffer.from(request.digest);
    if (format === 'raw') {
      if (!data || digest) throw invalid('A raw signature takes data only');
      if (data.length === 0 || data.length > MAX_RAW_LENGTH) throw invalid(`Raw data must be 1..${MAX_RAW_LENGTH} bytes`);
    } else {
      pkcs1DigestLength(hash); // throws InvalidInput for an unknown hash
      if (data === undefined && digest === undefined) throw invalid('Give the data or its digest');
      if (data && digest) throw invalid('Give the data or its digest, not both');
      if (digest && digest.length !== pkcs1DigestLength(hash)) throw invalid(`A ${hash} digest is ${pkcs1DigestLength(hash)} bytes`);
      if (data) digest = createHash(hash).update(data).digest();
      if (format === 'cms' && request.detached === false && !data) throw invalid('An attached CMS signature needs the data');
    }

    return this.#withCard(request, true, async (card, session) => {
      const certificates = await this.#certificates(card, session, 'keys');
      const key = signingKey(certificates);
      request.checkSigningKey?.(key);
      const { serialNumber } = await this.#cardInfo(card, session);
      const privateSign = async (block: Buffer): Promise<Buffer> => {
        const signature = await this.#withPin(serialNumber, use, () => card.privateOperation(key.keyReference, block, pin));
        checkSignature(key.der, block, signature);
        return signature;
      };
      let signature: Buffer;
      if (format === 'raw') {
        signature = await privateSign(pkcs1Type1Pad(MOICA_MODULUS_LENGTH, data!));
      } else if (format === 'pkcs1') {
        signature = await privateSign(pkcs1v15SignatureBlock(MOICA_MODULUS_LENGTH, hash, digest!));
      } else {
        const chain = request.includeChain === false ? [] : certificates.filter((c) => c.facts.role === 'ca').map((c) => c.der);
        signature = await createCmsSignedData({
          ...(data ? { content: data } : { digest: digest! }),
          detached: request.detached ?? data === undefined,
          hash,
          signerCertificate: key.der,
          extraCertificates: chain,
          signingTime: request.signingTime === false ? null : (this.#options.now?.() ?? new Date()),
          sign: (attributesDigest, attributesHash) => privateSign(pkcs1v15SignatureBlock(MOICA_MODULUS_LENGTH, attributesHash, attributesDigest)),
        });
      }
      return { format, hash, signature, certificate: key.der, reader: session.reader, serialNumber };
    });
  }

  /** PKCS#1 v1.5 decryption with the encryption (KEYX) key. */
  async decrypt(ciphertext: Uint8Array, pin: string, selector: MoicaCardSelector = {}, use: PinUse = {}): Promise<Buffer> {
    assertMoicaPin(pin);
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== MOICA_MODULUS_LENGTH) {
      throw invalid(`Ciphertext must be ${MOICA_MODULUS_LENGTH} bytes`);
    }
    return this.#withCard(selector, true, async (card, session) => {
      const key = findKey(await this.#certificates(card, session, 'keys'), 'KEYX', 'encrypt');
      // RSADP is undefined for c ≥ n (RFC 8017 §5.1.2); the card would answer with an error
      // that differs from a bad padding. Refuse it here with the same generic failure, before
      // the PIN is spent on it.
      const modulus = key.facts.publicKey?.modulus;
      if (modulus && compareBigEndian(Buffer.from(ciphertext), modulus) >= 0) {
        throw new CardBridgeError('ProtocolError', 'Decryption failed');
      }
      const { serialNumber } = await this.#cardInfo(card, session);
      return this.#withPin(serialNumber, use, () => card.decrypt(key.keyReference, ciphertext, pin));
    });
  }
}

/** Compares two unsigned big-endian integers of any byte length. */
function compareBigEndian(a: Buffer, b: Buffer): number {
  const strip = (x: Buffer) => x.subarray(x.findIndex((byte) => byte !== 0) === -1 ? x.length : x.findIndex((byte) => byte !== 0));
  const x = strip(a);
  const y = strip(b);
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return Buffer.compare(x, y);
}
