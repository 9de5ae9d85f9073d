import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { VirtualCard } from './virtual-card.js';

/** vsmartcard's vpcd driver listens here for slot 0; slot n uses this port + n. */
export const VPCD_DEFAULT_PORT = 35963;

const CONTROL_POWER_OFF = 0;
const CONTROL_POWER_ON = 1;
const CONTROL_RESET = 2;
const CONTROL_GET_ATR = 4;

export interface VpcdClientOptions {
  host?: string;
  port?: number;
  /** Reconnect when vpcd goes away (pcscd restarted); on by default. */
  reconnect?: boolean;
  reconnectDelayMs?: number;
}

/**
 * Puts a virtual card into a vpcd reader slot. To vpcd, a connected client *is* an inserted
 * card, so `insert()` connects and `remove()` disconnects. Framing is vpcd's: a 2-byte
 * big-endian length, then the body; a 1-byte body is a control message.
 *
 * Events: `inserted` (connected to vpcd), `removed` (connection gone), `error`-free by
 * design — connection failures are retried while inserted, because pcscd may be restarting.
 */
export class VpcdCardSlot extends EventEmitter {
  private socket: net.Socket | undefined;
  private wantInserted = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private buffered = Buffer.alloc(0);
  private processing: Promise<void> = Promise.resolve();
  private readonly host: string;
  private readonly port: number;
  private readonly reconnect: boolean;
  private readonly reconnectDelayMs: number;

  constructor(
    private card: VirtualCard,
    options: VpcdClientOptions = {},
  ) {
    super();
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? VPCD_DEFAULT_PORT;
    this.reconnect = options.reconnect ?? true;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 200;
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.connecting && !this.socket.destroyed;
  }

  /** Replaces the card; takes effect at the next insertion. */
  setCard(card: VirtualCard): void {
    this.card = card;
  }

  /** Connects to vpcd; resolves once connected (retrying while vpcd is not up yet). */
  insert(): Promise<void> {
    this.wantInserted = true;
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => {
      this.once('inserted', () => resolve());
      if (!this.socket) this.connect();
    });
  }

  /** Disconnects: pcscd sees the card removed within its polling interval. */
  remove(): Promise<void> {
    this.wantInserted = false;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
  }

  private connect(): void {
    const socket = net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    this.buffered = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('connect', () => this.emit('inserted'));
    socket.on('data', (chunk) => this.onData(socket, chunk));
    socket.on('error', () => {
      // 'close' follows and decides whether to retry.
    });
    socket.on('close', () => {
      const wasConnected = !socket.connecting;
      if (this.socket === socket) this.socket = undefined;
      if (wasConnected) this.emit('removed');
      if (this.wantInserted && this.reconnect) {
        this.retryTimer = setTimeout(() => {
          if (this.wantInserted && !this.socket) this.connect();
        }, this.reconnectDelayMs);
        // Waiting for vpcd must never keep a finished test run or demo alive.
        this.retryTimer.unref();
      }
    });
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 2) {
      const length = this.buffered.readUInt16BE(0);
      if (this.buffered.length < 2 + length) break;
      const message = this.buffered.subarray(2, 2 + length);
      this.buffered = this.buffered.subarray(2 + length);
      // Answers must leave in request order even when the card answers asynchronously.
      this.processing = this.processing.then(() => this.handle(socket, Buffer.from(message)));
    }
  }

  private async handle(socket: net.Socket, message: Buffer): Promise<void> {
    if (message.length === 1) {
      switch (message[0]) {
        case CONTROL_POWER_OFF:
        case CONTROL_RESET:
          this.card.reset?.();
          return;
        case CONTROL_POWER_ON:
          return;
        case CONTROL_GET_ATR:
          return this.send(socket, this.card.atr);
        default:
          return; // unknown control messages are ignored, as vpicc does
      }
    }
    let response: Buffer;
    try {
      response = Buffer.from(await this.card.process(message));
    } catch {
      response = Buffer.from([0x6f, 0x00]); // a crashing emulator looks like a faulty card, not a hang
    }
    this.send(socket, response);
  }

  private send(socket: net.Socket, body: Buffer): void {
    if (socket.destroyed) return;
    const frame = Buffer.alloc(2 + body.length);
    frame.writeUInt16BE(body.length, 0);
    body.copy(frame, 2);
    socket.write(frame);
  }
}
