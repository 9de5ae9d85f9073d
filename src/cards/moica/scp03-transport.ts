import { randomBytes } from 'node:crypto';
import { CardBridgeError } from '../../errors.js';
import type { CommandApdu, ResponseApdu } from '../../pcsc/apdu.js';
import type { CardTransport } from '../../pcsc/transport.js';
import { statusWordError } from '../../pcsc/status-words.js';
import { SCP03_CHALLENGE_LENGTH, SCP03_SECURITY_LEVEL, Scp03Session, type Scp03StaticKeys } from '../../crypto/scp03.js';
import { initializeUpdate } from './commands.js';

export interface Scp03TransportOptions {
  /** Host challenge source; injectable for recorded-vector tests. */
  random?: (length: number) => Buffer;
  keyVersion?: number;
}

/** INITIALIZE UPDATE answer: diversification data 10, key info 3, card challenge 8, cryptogram 8. */
const INITIALIZE_UPDATE_MIN_LENGTH = 29;
const SCP03_ID_OFFSET = 11;

/**
 * GlobalPlatform SCP03 (security level 3: C-MAC + C-DECRYPTION) as a transport wrapper: the
 * driver above sends plain APDUs and this layer secures each one on its way down, as
 * yubikit's scp processor sits under its application sessions. Responses are not protected
 * (no R-MAC at this level) and pass through unchanged.
 */
export class Scp03Transport implements CardTransport {
  readonly #inner: CardTransport;
  readonly #keys: Scp03StaticKeys;
  readonly #random: (length: number) => Buffer;
  readonly #keyVersion: number;
  #session: Scp03Session | undefined;

  constructor(inner: CardTransport, staticKeys: Scp03StaticKeys, options: Scp03TransportOptions = {}) {
    this.#inner = inner;
    this.#keys = staticKeys;
    this.#random = options.random ?? randomBytes;
    this.#keyVersion = options.keyVersion ?? 0x01;
  }

  get isOpen(): boolean {
    return this.#session?.isAuthenticated ?? false;
  }

  /** INITIALIZE UPDATE, card cryptogram check, EXTERNAL AUTHENTICATE. */
  async open(): Promise<void> {
    this.close();
    const hostChallenge = this.#random(SCP03_CHALLENGE_LENGTH);
    const init = await this.#inner.transmit(initializeUpdate(hostChallenge, this.#keyVersion));
    if (init.sw !== 0x9000) throw statusWordError(init.sw, 'Secure channel: INITIALIZE UPDATE');
    const data = init.data;
    if (data.length < INITIALIZE_UPDATE_MIN_LENGTH) {
      throw new CardBridgeError('ProtocolError', `Secure channel: INITIALIZE UPDATE answered ${data.length} bytes`);
    }
    if (data[SCP03_ID_OFFSET] !== 0x03) {
      throw new CardBridgeError('ProtocolError', `Secure channel: the card offers SCP ${data[SCP03_ID_OFFSET]}, not SCP03`);
    }
    const session = new Scp03Session(this.#keys, hostChallenge, data.subarray(13, 21));
    session.verifyCardCryptogram(data.subarray(21, 29));
    const auth = session.externalAuthenticateMac(SCP03_SECURITY_LEVEL.cMacCDec);
    const response = await this.#inner.transmit(auth);
    if (response.sw !== 0x9000) {
      session.destroy();
      throw statusWordError(response.sw, 'Secure channel: EXTERNAL AUTHENTICATE');
    }
    this.#session = session;
  }

  async transmit(command: CommandApdu): Promise<ResponseApdu> {
    const session = this.#session;
    if (!session?.isAuthenticated) {
      throw new CardBridgeError('ProtocolError', 'Secure channel is not open');
    }
    const wrapped: CommandApdu = session.wrap({ cla: command.cla, ins: command.ins, p1: command.p1, p2: command.p2, ...(command.data ? { data: command.data } : {}) });
    if (command.le !== undefined) wrapped.le = command.le;
    return this.#inner.transmit(wrapped);
  }

  /** Forgets the session keys; the card ends its side on the next plain command or reset. */
  close(): void {
    this.#session?.destroy();
    this.#session = undefined;
  }
}
