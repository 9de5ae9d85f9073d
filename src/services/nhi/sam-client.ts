import { type KeyObject, createPublicKey, generateKeyPair, randomBytes } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { promisify } from 'node:util';
import { CardBridgeError } from '../../errors.js';
import {
  SAM_CLIENT_NONCE_LENGTH,
  SAM_CLIENT_RSA_BITS,
  SAM_FRAME_END,
  SAM_HELLO,
  SAM_L_KEY,
  SAM_MESSAGE,
  SAM_RC_OK,
  SAM_SESSION_KEY_LENGTH,
  SAM_SIGNATURE_LENGTH,
  type SamMessage,
  SamFormatError,
  decryptFrameBody,
  deriveSessionKey,
  encodeNonceFrame,
  encodeSamMessage,
  encryptFrame,
  findEncryptedFrameEnd,
  parseSamMessage,
  parseServerHello,
  rsaPkcs1Decrypt,
  rsaPkcs1Encrypt,
} from './sam-protocol.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** The official service; raw TCP (not TLS) despite the port. */
export const NHI_SAM_DEFAULT_HOST = 'cloudicap.nhi.gov.tw';
export const NHI_SAM_DEFAULT_PORT = 443;

export interface SamClientOptions {
  host?: string;
  port?: number;
  /** Time allowed for the TCP connection (default 5 s). */
  connectTimeoutMs?: number;
  /** Time allowed for each request/answer step, whole frame included (default 10 s). */
  stepTimeoutMs?: number;
  /** The largest frame accepted from the SAM (default 4096 bytes; real ones are under 500). */
  maxFrameBytes?: number;
  /** Send the `77` health check right after the handshake to prove the session key (default true). */
  healthCheck?: boolean;
  /**
   * Makes the TCP socket (default `net.connect`); for tests and for routing through something
   * else. The returned socket must emit 'connect' once connected.
   */
  createSocket?: (host: string, port: number) => Socket;
}

/** Steps of a SAM conversation, each failing with its own `SamClientError.step`. */
export type SamStep = 'connect' | 'handshake' | 'health' | 'authenticate' | 'sign';

/**
 * Why a step failed:
 * - refused / unreachable: no TCP connection (step 'connect');
 * - timeout: no complete answer within the step's time (slow or silent SAM);
 * - closed: the SAM closed or reset the connection (including mid-frame);
 * - oversized: more than maxFrameBytes without an end of frame;
 * - framing: bytes that are not a frame (bad nonce header, extra data after a frame);
 * - decrypt: a frame that does not decrypt under the expected key;
 * - malformed: a decrypted message of the wrong type, grammar or field length;
 * - server-key: the SAM's public key is unusable;
 * - server-nonce: the SAM's nonce cannot be decrypted or is too short;
 * - rejected: the SAM answered with a result code other than OK;
 * - signature-length: the signature is not 256 bytes.
 */
export type SamFailureReason =
  | 'refused'
  | 'unreachable'
  | 'timeout'
  | 'closed'
  | 'oversized'
  | 'framing'
  | 'decrypt'
  | 'malformed'
  | 'server-key'
  | 'server-nonce'
  | 'rejected'
  | 'signature-length';

/**
 * A SAM failure: `SamUnavailable` when no connection could be made, else `SamError`; `step`
 * and `reason` say exactly what went wrong so that an edge can pick its protocol's code.
 * `stage` is `sam-<step>`.
 */
export class SamClientError extends CardBridgeError {
  constructor(
    readonly step: SamStep,
    readonly reason: SamFailureReason,
    message: string,
    cause?: unknown,
  ) {
    super(step === 'connect' ? 'SamUnavailable' : 'SamError', message, {
      stage: `sam-${step}`,
      ...(step === 'connect' && { hint: "Check the network connection to NHI's card authentication service (健保卡雲端驗證)." }),
      ...(cause !== undefined && { cause }),
    });
    this.name = 'SamClientError';
  }
}

interface Waiter {
  step: SamStep;
  parse: (buffer: Buffer) => { length: number; value: Buffer } | undefined;
  resolve: (value: Buffer) => void;
  reject: (error: SamClientError) => void;
  timer: NodeJS.Timeout;
}

/**
 * One socket's frames: collects bytes, enforces the size bound, hands out one frame per
 * request with a deadline, and fails the waiting step when the SAM closes the connection.
 */
class FrameChannel {
  private buffer = Buffer.alloc(0);
  private waiter: Waiter | undefined;
  private ended = false;
  private failure: SamClientError | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly maxFrameBytes: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd('the SAM closed the connection'));
    socket.on('close', () => this.onEnd('the connection to the SAM closed'));
    socket.on('error', (e) => this.onEnd(`the connection to the SAM failed: ${e.message}`));
  }

  get isOpen(): boolean {
    return !this.ended && this.failure === undefined;
  }

  async send(step: SamStep, frame: Buffer): Promise<void> {
    this.ensureOpen(step);
    await new Promise<void>((resolve, reject) => {
      this.socket.write(frame, (e) => {
        if (e) reject(new SamClientError(step, 'closed', `Sending to the SAM failed (${step}): ${e.message}`, e));
        else resolve();
      });
    });
  }

  receive(step: SamStep, timeoutMs: number, parse: Waiter['parse']): Promise<Buffer> {
    this.ensureOpen(step);
    if (this.waiter) throw new Error('FrameChannel: one request at a time');
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SamClientError(step, 'timeout', `The SAM did not answer in time (${step}, ${timeoutMs} ms)`));
      }, timeoutMs);
      this.waiter = { step, parse, resolve, reject, timer };
      this.deliver();
    });
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
  }

  private ensureOpen(step: SamStep): void {
    if (this.failure) throw new SamClientError(step, this.failure.reason, `The SAM session is unusable after an earlier failure: ${this.failure.message}`);
    if (this.ended) throw new SamClientError(step, 'closed', `The SAM closed the connection (${step})`);
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    this.deliver();
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter) {
      if (this.buffer.length > this.maxFrameBytes) {
        this.fail(new SamClientError('handshake', 'oversized', `The SAM sent more than ${this.maxFrameBytes} unrequested bytes`));
      }
      return;
    }
    let frame: { length: number; value: Buffer } | undefined;
    try {
      frame = waiter.parse(this.buffer);
    } catch (e) {
      const kind = e instanceof SamFormatError ? e.kind : 'framing';
      this.fail(new SamClientError(waiter.step, kind, `Bad frame from the SAM (${waiter.step}): ${(e as Error).message}`, e));
      return;
    }
    if (!frame) {
      if (this.buffer.length > this.maxFrameBytes) {
        this.fail(new SamClientError(waiter.step, 'oversized', `The SAM's frame exceeds ${this.maxFrameBytes} bytes (${waiter.step})`));
      }
      return;
    }
    if (frame.length > this.maxFrameBytes) {
      this.fail(new SamClientError(waiter.step, 'oversized', `The SAM's frame exceeds ${this.maxFrameBytes} bytes (${waiter.step})`));
      return;
    }
    if (this.buffer.length > frame.length) {
      this.fail(new SamClientError(waiter.step, 'framing', `The SAM sent data after its answer (${waiter.step})`));
      return;
    }
    this.buffer = Buffer.alloc(0);
    this.waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.resolve(frame.value);
  }

  private onEnd(message: string): void {
    if (this.ended) return;
    this.ended = true;
    const waiter = this.waiter;
    if (waiter) {
      // Whatever arrived before the close may already be a complete frame.
      this.deliver();
      if (this.waiter) this.fail(new SamClientError(waiter.step, 'closed', `${message} before answering (${waiter.step})`));
    }
  }

  private fail(error: SamClientError): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    this.socket.destroy();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}

/** Parses `<body><E>` where the body is whole 3DES blocks; returns the body. */
function encryptedFrameParser(buffer: Buffer): { length: number; value: Buffer } | undefined {
  const end = findEncryptedFrameEnd(buffer);
  if (end === -1) {
    // Everything received so far ends in <E> but not after whole blocks: a plain-text answer
    // (an error page, a proxy's message), not a frame; fail now rather than at the deadline.
    if (buffer.length >= SAM_FRAME_END.length && buffer.subarray(buffer.length - SAM_FRAME_END.length).equals(SAM_FRAME_END)) {
      throw new SamFormatError('framing', `a frame ended after ${buffer.length - SAM_FRAME_END.length} bytes, not whole 3DES blocks`);
    }
    return undefined;
  }
  return { length: end + SAM_FRAME_END.length, value: Buffer.from(buffer.subarray(0, end)) };
}

function asSamError(step: SamStep, reason: SamFailureReason, e: unknown): SamClientError {
  if (e instanceof SamClientError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new SamClientError(step, reason, `SAM ${step} failed: ${message}`, e);
}

/**
 * An open, authenticated session with NHI's cloud SAM. `open()` connects and runs the
 * handshake (and by default the health check); then `authenticateCard` and `sign` relay the
 * card's mutual authentication and obtain the 256-byte H_Sign value. Every step is bounded by
 * a timeout and the frame size bound; any failure closes the session.
 */
export class SamSession {
  private constructor(
    private readonly channel: FrameChannel,
    private readonly sessionKey: Buffer,
    private readonly stepTimeoutMs: number,
  ) {}

  static async open(options: SamClientOptions = {}): Promise<SamSession> {
    const host = options.host ?? NHI_SAM_DEFAULT_HOST;
    const port = options.port ?? NHI_SAM_DEFAULT_PORT;
    const stepTimeoutMs = options.stepTimeoutMs ?? 10_000;
    const maxFrameBytes = options.maxFrameBytes ?? 4096;
    // Made while the TCP connection is being set up.
    const keyPair = generateKeyPairAsync('rsa', { modulusLength: SAM_CLIENT_RSA_BITS });
    keyPair.catch(() => undefined);
    const socket = await connectSocket(host, port, options.connectTimeoutMs ?? 5000, options.createSocket);
    const channel = new FrameChannel(socket, maxFrameBytes);
    try {
      const { publicKey, privateKey } = await keyPair;
      const sessionKey = await handshake(channel, publicKey, privateKey, stepTimeoutMs);
      const session = new SamSession(channel, sessionKey, stepTimeoutMs);
      if (options.healthCheck ?? true) await session.healthCheck();
      return session;
    } catch (e) {
      channel.close();
      throw asSamError('handshake', 'malformed', e);
    }
  }

  get isOpen(): boolean {
    return this.channel.isOpen;
  }

  /** `77` → `04<rc=2>OK`. */
  async healthCheck(): Promise<void> {
    const reply = await this.exchange('health', encodeSamMessage(SAM_MESSAGE.healthCheck));
    this.expectResultOk('health', reply);
  }

  /** Sends the card id and challenge (`01`), returns the SAM's 32 bytes for the card (`02`). */
  async authenticateCard(cardId: Uint8Array, challenge: Uint8Array): Promise<Buffer> {
    if (cardId.length !== 12 || challenge.length !== 8) {
      throw new CardBridgeError('InvalidInput', 'The SAM needs a 12-byte card id and an 8-byte challenge', { stage: 'sam-authenticate' });
    }
    const reply = await this.exchange(
      'authenticate',
      encodeSamMessage(SAM_MESSAGE.authRequest, [
        ['id', cardId],
        ['rn', challenge],
      ]),
    );
    if (reply.type === SAM_MESSAGE.result) this.expectResultOk('authenticate', reply);
    const au = reply.fields.get('au');
    if (reply.type !== SAM_MESSAGE.authResponse || !au) {
      throw this.failed('authenticate', 'malformed', `The SAM answered message ${reply.type} instead of 02<au=32>`);
    }
    if (au.length !== 32) throw this.failed('authenticate', 'malformed', `The SAM's authentication data is ${au.length} bytes, expected 32`);
    return au;
  }

  /**
   * Sends the card's 16-byte answer and the 20-character string to sign (`03`); returns the
   * 256-byte H_Sign value from `04<rc=2>OK<si=256>`.
   */
  async sign(cardReply: Uint8Array, toBeSigned: string): Promise<Buffer> {
    if (cardReply.length !== 16 || !/^[\x20-\x7e]{20}$/.test(toBeSigned)) {
      throw new CardBridgeError('InvalidInput', 'The SAM needs the 16-byte card answer and a 20-character string', { stage: 'sam-sign' });
    }
    const reply = await this.exchange(
      'sign',
      encodeSamMessage(SAM_MESSAGE.signRequest, [
        ['au', cardReply],
        ['se', toBeSigned],
      ]),
    );
    if (reply.type !== SAM_MESSAGE.result) throw this.failed('sign', 'malformed', `The SAM answered message ${reply.type} instead of 04`);
    this.expectResultOk('sign', reply);
    const si = reply.fields.get('si');
    if (!si) throw this.failed('sign', 'malformed', 'The SAM answered OK without a signature');
    if (si.length !== SAM_SIGNATURE_LENGTH) {
      throw this.failed('sign', 'signature-length', `The SAM's signature is ${si.length} bytes, expected ${SAM_SIGNATURE_LENGTH}`);
    }
    return si;
  }

  close(): void {
    this.channel.close();
  }

  private async exchange(step: SamStep, message: Buffer): Promise<SamMessage> {
    try {
      const answer = this.channel.receive(step, this.stepTimeoutMs, encryptedFrameParser);
      answer.catch(() => undefined); // observed below; avoids an unhandled rejection if send fails first
      await this.channel.send(step, encryptFrame(this.sessionKey, message));
      const body = await answer;
      return parseSamMessage(decryptFrameBody(this.sessionKey, body));
    } catch (e) {
      if (e instanceof SamFormatError) throw this.failed(step, e.kind, `Bad answer from the SAM (${step}): ${e.message}`, e);
      if (e instanceof SamClientError) {
        this.channel.close();
        throw e;
      }
      throw this.failed(step, 'closed', `SAM ${step} failed: ${(e as Error).message}`, e);
    }
  }

  private expectResultOk(step: SamStep, reply: SamMessage): void {
    if (reply.type !== SAM_MESSAGE.result) throw this.failed(step, 'malformed', `The SAM answered message ${reply.type} instead of 04`);
    const rc = reply.fields.get('rc');
    if (!rc || rc.length !== 2) throw this.failed(step, 'malformed', 'The SAM answer has no 2-character result code');
    const code = rc.toString('latin1');
    if (code !== SAM_RC_OK) throw this.failed(step, 'rejected', `The SAM refused (${step}): result code "${code.replace(/[^\x20-\x7e]/g, '?')}"`);
  }

  private failed(step: SamStep, reason: SamFailureReason, message: string, cause?: unknown): SamClientError {
    this.channel.close();
    return new SamClientError(step, reason, message, cause);
  }
}

function connectSocket(host: string, port: number, timeoutMs: number, createSocket?: (host: string, port: number) => Socket): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = createSocket ? createSocket(host, port) : connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new SamClientError('connect', 'timeout', `Could not reach the SAM service at ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const reason: SamFailureReason = e.code === 'ECONNREFUSED' ? 'refused' : 'unreachable';
      reject(new SamClientError('connect', reason, `Could not reach the SAM service at ${host}:${port}: ${e.code ?? e.message}`, e));
    });
  });
}

async function handshake(channel: FrameChannel, publicKey: KeyObject, privateKey: KeyObject, timeoutMs: number): Promise<Buffer> {
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const reply = channel.receive('handshake', timeoutMs, encryptedFrameParser);
  reply.catch(() => undefined);
  await channel.send('handshake', encryptFrame(SAM_L_KEY, Buffer.concat([SAM_HELLO, Buffer.from(pem, 'ascii')])));
  const body = await reply;
  let hello;
  try {
    hello = parseServerHello(decryptFrameBody(SAM_L_KEY, body));
  } catch (e) {
    const kind = e instanceof SamFormatError ? e.kind : 'malformed';
    throw new SamClientError('handshake', kind, `The SAM's handshake reply is not valid: ${(e as Error).message}`, e);
  }
  let serverKey: KeyObject;
  try {
    serverKey = createPublicKey(hello.publicKeyPem);
    if (serverKey.asymmetricKeyType !== 'rsa') throw new Error(`a ${serverKey.asymmetricKeyType} key`);
  } catch (e) {
    throw new SamClientError('handshake', 'server-key', `The SAM's public key is not usable: ${(e as Error).message}`, e);
  }
  let serverNonce: Buffer;
  try {
    serverNonce = rsaPkcs1Decrypt(privateKey, hello.encryptedNonce);
  } catch (e) {
    throw new SamClientError('handshake', 'server-nonce', "The SAM's nonce cannot be decrypted", e);
  }
  if (serverNonce.length < SAM_SESSION_KEY_LENGTH - SAM_CLIENT_NONCE_LENGTH) {
    throw new SamClientError('handshake', 'server-nonce', `The SAM's nonce is ${serverNonce.length} bytes, too short for a session key`);
  }
  const clientNonce = randomBytes(SAM_CLIENT_NONCE_LENGTH);
  let encryptedClientNonce: Buffer;
  try {
    encryptedClientNonce = rsaPkcs1Encrypt(serverKey, clientNonce);
  } catch (e) {
    throw new SamClientError('handshake', 'server-key', `Encrypting to the SAM's key failed: ${(e as Error).message}`, e);
  }
  await channel.send('handshake', encodeNonceFrame(encryptedClientNonce));
  return deriveSessionKey(clientNonce, serverNonce);
}
