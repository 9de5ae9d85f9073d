import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { CardBridgeError } from '../errors.js';
import { mapPcscError } from '../pcsc/pcsc-errors.js';
import { type Connection, RegistryBase, type RegistryOptions } from './registry-base.js';

/** The parts of the `pcsclite` addon we use (its own typings are not ESM-importable). */
interface PcscReaderHandle extends EventEmitter {
  name: string;
  SCARD_SHARE_SHARED: number;
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_STATE_PRESENT: number;
  SCARD_STATE_MUTE: number;
  SCARD_LEAVE_CARD: number;
  SCARD_RESET_CARD: number;
  connect(options: { share_mode: number; protocol: number }, cb: (err: unknown, protocol: number) => void): void;
  transmit(data: Buffer, resLen: number, protocol: number, cb: (err: unknown, response: Buffer) => void): void;
  disconnect(disposition: number, cb: (err: unknown) => void): void;
  close(): void;
}

interface PcscContext extends EventEmitter {
  start(cb: (err: unknown, data: Buffer) => void): void;
  close(): void;
}

type PcscFactory = () => PcscContext;

// npm drops an optional dependency whose build failed, so the fix is a fresh `npm install`
// (which builds the addon now that the headers exist), not `npm rebuild`.
export const PCSC_INSTALL_HINT =
  'Install the PC/SC service and its headers, then run "npm install" again in the cardbridge folder to build the addon ' +
  '(Debian/Ubuntu: "sudo apt-get install pcscd libpcsclite-dev").';

/** Loads the native addon, or explains exactly what is missing. */
export function loadPcscLite(): PcscFactory {
  try {
    return createRequire(import.meta.url)('pcsclite') as PcscFactory;
  } catch (e) {
    throw new CardBridgeError('Unavailable', 'Real card readers need the pcsclite addon, which is not installed on this machine.', {
      hint: PCSC_INSTALL_HINT,
      cause: e,
    });
  }
}

export interface PcscRegistryOptions extends RegistryOptions {
  /** How often to look for pcscd again after it went away. */
  reconnectIntervalMs?: number;
  factory?: PcscFactory;
}

/** Largest response a short or extended APDU can bring back: 65536 data bytes + SW. */
const MAX_RESPONSE = 65538;

/**
 * Readers through the system's PC/SC service. pcscd may stop and come back at any time (an
 * update, a crash, socket activation): the registry then reports the readers gone, keeps
 * trying to reach it, and announces them again, without the daemon ever crashing.
 */
export class PcscReaderRegistry extends RegistryBase {
  private factory: PcscFactory | undefined;
  private context: PcscContext | undefined;
  private readonly handles = new Map<string, PcscReaderHandle>();
  private available = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;
  private readonly reconnectIntervalMs: number;

  constructor(options: PcscRegistryOptions = {}) {
    super(options);
    this.factory = options.factory;
    this.reconnectIntervalMs = options.reconnectIntervalMs ?? 1000;
  }

  get serviceAvailable(): boolean {
    return this.available;
  }

  /** Why the service is unavailable, for status pages and `doctor`. */
  get serviceError(): string | undefined {
    return this.available ? undefined : this.lastError;
  }

  async start(): Promise<void> {
    this.factory ??= loadPcscLite();
    this.stopped = false;
    await this.open();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
  }

  private open(): Promise<void> {
    return new Promise((resolve) => {
      let context: PcscContext;
      try {
        context = this.factory!();
      } catch (e) {
        this.serviceDown(e);
        resolve();
        return;
      }
      this.context = context;
      const firstStatuses: Promise<void>[] = [];
      let enumerated = false;
      context.on('reader', (handle: PcscReaderHandle) => firstStatuses.push(this.attach(handle)));
      context.on('error', (e: unknown) => {
        if (this.context === context) this.serviceDown(e);
        resolve();
      });
      // The addon reports each reader list to its own callback and emits 'reader' only for
      // new names, so "enumerated, no readers" is invisible from outside. Wrapping start()
      // (which the addon calls on the next tick) tells us when the first list is complete.
      const start = context.start.bind(context);
      context.start = (cb) =>
        start((err, data) => {
          cb(err, data);
          if (enumerated || err) return;
          enumerated = true;
          if (!this.available) {
            const wasDown = this.lastError !== undefined;
            this.available = true;
            this.lastError = undefined;
            if (wasDown) this.publish({ type: 'service-restored' });
          }
          void Promise.all(firstStatuses).then(() => resolve());
        });
    });
  }

  private attach(handle: PcscReaderHandle): Promise<void> {
    const name = handle.name;
    this.handles.set(name, handle);
    this.readerAdded(name);
    handle.on('error', () => {
      // A reader's monitor fails when pcscd goes away; the context's own error handles that.
    });
    handle.on('end', () => {
      if (this.handles.get(name) === handle) {
        this.handles.delete(name);
        this.readerRemoved(name);
      }
    });
    return new Promise((resolve) => {
      handle.on('status', (status: { state: number; atr?: Buffer }) => {
        const present = (status.state & handle.SCARD_STATE_PRESENT) !== 0;
        // pcscd keeps its count of card events in the state's upper 16 bits.
        if (present) this.cardInserted(name, status.atr ?? Buffer.alloc(0), status.state >>> 16);
        else this.cardRemoved(name);
        resolve();
      });
    });
  }

  private serviceDown(error: unknown): void {
    const wasAvailable = this.available;
    this.available = false;
    this.lastError = mapPcscError(error).message;
    this.teardown();
    if (this.stopped) return;
    if (wasAvailable) this.publish({ type: 'service-lost', message: this.lastError });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.open(), this.reconnectIntervalMs);
  }

  private teardown(): void {
    const context = this.context;
    this.context = undefined;
    for (const [name, handle] of this.handles) {
      this.handles.delete(name);
      try {
        handle.close();
      } catch {
        // already closed by the addon
      }
    }
    for (const name of this.readerNames()) this.readerRemoved(name);
    try {
      context?.close();
    } catch {
      // the addon's monitor thread may already have ended
    }
  }

  protected connect(reader: string, exclusive: boolean): Promise<Connection> {
    const handle = this.handles.get(reader);
    if (!handle) return Promise.reject(new CardBridgeError('NoReader', `Reader "${reader}" is not connected`, { reader }));
    return new Promise((resolve, reject) => {
      handle.connect(
        {
          share_mode: exclusive ? handle.SCARD_SHARE_EXCLUSIVE : handle.SCARD_SHARE_SHARED,
          protocol: handle.SCARD_PROTOCOL_T0 | handle.SCARD_PROTOCOL_T1,
        },
        (err, protocol) => {
          if (err) return reject(mapPcscError(err, reader));
          resolve({
            transmit: (command) =>
              new Promise((ok, fail) => {
                handle.transmit(command, MAX_RESPONSE, protocol, (e, response) => {
                  if (e) return fail(mapPcscError(e, reader));
                  // Not even a status word: the link to the card broke mid-command (vpcd answers a
                  // card that vanished this way), so let the registry check whether it was removed.
                  if (response.length === 0) return fail(new CardBridgeError('TransportError', 'The reader returned no response from the card', { reader }));
                  ok(response);
                });
              }),
            close: (reset) =>
              new Promise((ok) => {
                handle.disconnect(reset ? handle.SCARD_RESET_CARD : handle.SCARD_LEAVE_CARD, () => ok());
              }),
          });
        },
      );
    });
  }
}
