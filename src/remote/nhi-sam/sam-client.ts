import { type KeyObject, createPublicKey, generateKeyPair, randomBytes } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { promisify } from 'node:util';
import { CardBridgeError } from '../../errors.js';
import {
  SAM_CARD_ID_LENGTH,
  SAM_CARD_REPLY_LENGTH,
  SAM_CHALLENGE_LENGTH,
  SAM_CLIENT_NONCE_LENGTH,
  SAM_CLIENT_RSA_BITS,
  SAM_FRAME_END,
  SAM_HEALTH_OK,
  SAM_HEALTH_REQUEST,
  SAM_L_KEY,
  SAM_SESSION_KEY_LENGTH,
  SamFormatError,
  deriveSessionKey,
  encodeAuthRequest,
  encodeClientHello,
  encodeNonceFrame,
  encodeSignRequest,
  findEncryptedFrameEnd,
  openFrameBody,
  parseAuthResponse,
  parseServerHello,
  parseSignResult,
  printable,
  rsaPkcs1Decrypt,
  rsaPkcs1Encrypt,
  sealFrame,
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
  /**
   * Makes the TCP socket (default `net.connect`); for tests and for routing through something
   * else. The returned socket must emit 'connect' once connected.
   */
  createSocket?: (host: string, port: number) => Socket;
}

/**
 * The steps of a SAM conversation, one per entry of the working peer's error table
 * (specs/nhi-card.md), so that an edge can give each failure the peer's number:
 * connect; key-generation and key-export (our RSA-1024 key); hello-send; hello-receive (receive,
 * decrypt and read the server hello, decrypt its nonce); nonce-encrypt (read the server's key,
 * encrypt our nonce to it); nonce-send; auth-send / auth-receive (01 / 02); sign-send /
 * sign-receive (03 / 04); and health, the diagnostic plain `77` on a connection of its own,
 * which is never part of a login.
 */
export type SamStep =
  | 'connect'
  | 'key-generation'
  | 'key-export'
  | 'hello-send'
  | 'hello-receive'
  | 'nonce-encrypt'
  | 'nonce-send'
  | 'auth-send'
  | 'auth-receive'
  | 'sign-send'
  | 'sign-receive'
  | 'health';

/**
 * Why a step failed:
 * - refused / unreachable: no TCP connection (step 'connect');
 * - timeout: no complete answer within the step's time (slow or silent SAM);
 * - closed: the SAM closed or reset the connection (including mid-frame);
 * - oversized: more than maxFrameBytes without an end of frame;
 * - framing: bytes that are not a frame (extra data after a frame, plain text);
 * - decrypt: a frame that does not decrypt under the expected key;
 * - malformed: a decrypted message without the expected prefix, length or trailing `<E>`;
 * - local-key: our own RSA key could not be made or exported;
 * - server-key: the SAM's public key is unusable;
 * - server-nonce: the SAM's nonce cannot be decrypted or is too short;
 * - rejected: the SAM answered `04<rc=2>xx<E>` with a code other than OK.
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
  | 'local-key'
  | 'server-key'
  | 'server-nonce'
  | 'rejected';

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

type FrameParser = (buffer: Buffer) => { length: number; value: Buffer } | undefined;

interface Waiter {
  step: SamStep;
  parse: FrameParser;
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
  /** The SAM sent more than maxFrameBytes while nobody was waiting; the next receive fails. */
  private overflowed = false;
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

  receive(step: SamStep, timeoutMs: number, parse: FrameParser): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failureFor(step));
    if (this.overflowed) {
      this.fail(new SamClientError(step, 'oversized', `The SAM sent more than ${this.maxFrameBytes} unrequested bytes (${step})`));
      return Promise.reject(this.failure!);
    }
    if (this.waiter) throw new Error('FrameChannel: one request at a time');
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new SamClientError(step, 'timeout', `The SAM did not answer in time (${step}, ${timeoutMs} ms)`));
      }, timeoutMs);
      this.waiter = { step, parse, resolve, reject, timer };
      this.deliver();
      if (this.waiter && this.ended) this.fail(new SamClientError(step, 'closed', `The SAM closed the connection before answering (${step})`));
    });
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
  }

  private failureFor(step: SamStep): SamClientError {
    const failure = this.failure!;
    return new SamClientError(step, failure.reason, `The SAM session is unusable after an earlier failure: ${failure.message}`);
  }

  private ensureOpen(step: SamStep): void {
    if (this.failure) throw this.failureFor(step);
    if (this.ended) throw new SamClientError(step, 'closed', `The SAM closed the connection (${step})`);
  }

  private onData(chunk: Buffer): void {
    if (this.failure || this.overflowed) return;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    this.deliver();
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter) {
      if (this.buffer.length > this.maxFrameBytes) {
        this.overflowed = true;
        this.buffer = Buffer.alloc(0);
        this.socket.destroy();
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
    if (!frame || frame.length > this.maxFrameBytes) {
      if (this.buffer.length > this.maxFrameBytes) {
        this.fail(new SamClientError(waiter.step, 'oversized', `The SAM's frame exceeds ${this.maxFrameBytes} bytes (${waiter.step})`));
      }
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

/** Parses `<ciphertext><E>` where the ciphertext is whole 3DES blocks; returns the ciphertext. */
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

/** The plain health answer: everything up to and including the first `<E>`. */
function plainAnswerParser(buffer: Buffer): { length: number; value: Buffer } | undefined {
  const end = buffer.indexOf(SAM_FRAME_END);
  if (end === -1) return buffer.length > SAM_HEALTH_OK.length * 4 ? { length: buffer.length, value: Buffer.from(buffer) } : undefined;
  return { length: end + SAM_FRAME_END.length, value: Buffer.from(buffer.subarray(0, end + SAM_FRAME_END.length)) };
}

/**
 * An open, authenticated session with NHI's cloud SAM. `open()` connects and runs the
 * handshake; then `authenticateCard` and `sign` relay the card's mutual authentication and
 * obtain the 256-byte H_Sign value. Nothing else is sent on this connection (the health check
 * has a connection of its own: `checkSamHealth`). Every step is bounded by a timeout and the
 * frame size bound; any failure closes the session.
 */
export class SamSession {
  private constructor(
    private readonly channel: FrameChannel,
    private readonly sessionKey: Buffer,
    private readonly stepTimeoutMs: number,
  ) {}

  static async open(options: SamClientOptions = {}): Promise<SamSession> {
    const stepTimeoutMs = options.stepTimeoutMs ?? 10_000;
    const { channel, sessionKey } = await openAndHandshake(options);
    return new SamSession(channel, sessionKey, stepTimeoutMs);
  }

  get isOpen(): boolean {
    return this.channel.isOpen;
  }

  /** Sends the card id and challenge (`01`), returns the SAM's 32 bytes for the card (`02`). */
  async authenticateCard(cardId: Uint8Array, challenge: Uint8Array): Promise<Buffer> {
    if (cardId.length !== SAM_CARD_ID_LENGTH || challenge.length !== SAM_CHALLENGE_LENGTH) {
      throw new CardBridgeError('InvalidInput', 'The SAM needs a 12-byte card id and an 8-byte challenge', { stage: 'sam-auth-send' });
    }
    return this.exchange('auth-send', 'auth-receive', encodeAuthRequest(cardId, challenge), parseAuthResponse);
  }

  /**
   * Sends the card's 16-byte answer and the 20-character string to sign (`03`); returns the
   * 256-byte H_Sign value, bytes [18, 274) of `04<rc=2>OK<si=256>…<E>`.
   */
  async sign(cardReply: Uint8Array, toBeSigned: string): Promise<Buffer> {
    if (cardReply.length !== SAM_CARD_REPLY_LENGTH || !/^[\x20-\x7e]{20}$/.test(toBeSigned)) {
      throw new CardBridgeError('InvalidInput', 'The SAM needs the 16-byte card answer and a 20-character string', { stage: 'sam-sign-send' });
    }
    return this.exchange('sign-send', 'sign-receive', encodeSignRequest(cardReply, toBeSigned), parseSignResult);
  }

  close(): void {
    this.channel.close();
  }

  private async exchange(sendStep: SamStep, receiveStep: SamStep, plaintext: Buffer, parse: (plain: Buffer) => Buffer): Promise<Buffer> {
    try {
      const answer = this.channel.receive(receiveStep, this.stepTimeoutMs, encryptedFrameParser);
      answer.catch(() => undefined); // observed below; avoids an unhandled rejection if send fails first
      await this.channel.send(sendStep, sealFrame(this.sessionKey, plaintext));
      const body = await answer;
      return parse(openFrameBody(this.sessionKey, body));
    } catch (e) {
      this.channel.close();
      if (e instanceof SamFormatError) throw new SamClientError(receiveStep, e.kind, `Bad answer from the SAM (${receiveStep}): ${e.message}`, e);
      if (e instanceof SamClientError) throw e;
      throw new SamClientError(sendStep, 'closed', `SAM ${sendStep} failed: ${(e as Error).message}`, e);
    }
  }
}

/** What the plain health check found; `ok` only for the exact 13 bytes `04<rc=2>OK<E>`. */
export interface SamHealth {
  ok: boolean;
  /** The raw answer, made printable, when it was not the expected one. */
  answer?: string;
  elapsedMs: number;
}

/**
 * The community agent's health check, as a diagnostic: a connection of its own, the handshake,
 * then the plain 5 bytes `77<E>`, and the raw answer compared with the plain `04<rc=2>OK<E>`.
 * Never run on a signing connection and never part of a login. Throws SamClientError when the
 * SAM cannot be reached or the handshake or the exchange fails; resolves with `ok: false` when
 * it answered something else.
 */
export async function checkSamHealth(options: SamClientOptions = {}): Promise<SamHealth> {
  const started = Date.now();
  const { channel } = await openAndHandshake(options);
  try {
    const answer = channel.receive('health', options.stepTimeoutMs ?? 10_000, plainAnswerParser);
    answer.catch(() => undefined);
    await channel.send('health', SAM_HEALTH_REQUEST);
    const raw = await answer;
    const ok = raw.equals(SAM_HEALTH_OK);
    return { ok, ...(!ok && { answer: printable(raw) }), elapsedMs: Date.now() - started };
  } finally {
    channel.close();
  }
}

async function openAndHandshake(options: SamClientOptions): Promise<{ channel: FrameChannel; sessionKey: Buffer }> {
  const host = options.host ?? NHI_SAM_DEFAULT_HOST;
  const port = options.port ?? NHI_SAM_DEFAULT_PORT;
  // Made while the TCP connection is being set up.
  const keyPair = generateKeyPairAsync('rsa', { modulusLength: SAM_CLIENT_RSA_BITS });
  keyPair.catch(() => undefined);
  const socket = await connectSocket(host, port, options.connectTimeoutMs ?? 5000, options.createSocket);
  const channel = new FrameChannel(socket, options.maxFrameBytes ?? 4096);
  try {
    let pair: { publicKey: KeyObject; privateKey: KeyObject };
    try {
      pair = await keyPair;
    } catch (e) {
      throw new SamClientError('key-generation', 'local-key', `Making the RSA key for the SAM handshake failed: ${(e as Error).message}`, e);
    }
    const sessionKey = await handshake(channel, pair.publicKey, pair.privateKey, options.stepTimeoutMs ?? 10_000);
    return { channel, sessionKey };
  } catch (e) {
    channel.close();
    if (e instanceof SamClientError) throw e;
    throw new SamClientError('hello-receive', 'malformed', `The SAM handshake failed: ${(e as Error).message}`, e);
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

/** Steps 1–2 of the spec: hello, server hello at its fixed offsets, our nonce; returns the session key. */
async function handshake(channel: FrameChannel, publicKey: KeyObject, privateKey: KeyObject, timeoutMs: number): Promise<Buffer> {
  let hello: Buffer;
  try {
    hello = encodeClientHello(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  } catch (e) {
    throw new SamClientError('key-export', 'local-key', `Exporting the RSA key for the SAM handshake failed: ${(e as Error).message}`, e);
  }
  const reply = channel.receive('hello-receive', timeoutMs, encryptedFrameParser);
  reply.catch(() => undefined);
  await channel.send('hello-send', sealFrame(SAM_L_KEY, hello));
  const body = await reply;
  let serverHello;
  try {
    serverHello = parseServerHello(openFrameBody(SAM_L_KEY, body));
  } catch (e) {
    const kind = e instanceof SamFormatError ? e.kind : 'malformed';
    throw new SamClientError('hello-receive', kind, `The SAM's handshake reply is not valid: ${(e as Error).message}`, e);
  }
  let serverNonce: Buffer;
  try {
    serverNonce = rsaPkcs1Decrypt(privateKey, serverHello.encryptedNonce);
  } catch (e) {
    throw new SamClientError('hello-receive', 'server-nonce', "The SAM's nonce cannot be decrypted", e);
  }
  if (serverNonce.length < SAM_SESSION_KEY_LENGTH - SAM_CLIENT_NONCE_LENGTH) {
    throw new SamClientError('hello-receive', 'server-nonce', `The SAM's nonce is ${serverNonce.length} bytes, too short for a session key`);
  }
  const clientNonce = randomBytes(SAM_CLIENT_NONCE_LENGTH);
  let encryptedClientNonce: Buffer;
  try {
    const serverKey = createPublicKey(serverHello.publicKeyPem);
    if (serverKey.asymmetricKeyType !== 'rsa') throw new Error(`a ${serverKey.asymmetricKeyType} key`);
    encryptedClientNonce = rsaPkcs1Encrypt(serverKey, clientNonce);
  } catch (e) {
    throw new SamClientError('nonce-encrypt', 'server-key', `The SAM's public key is not usable: ${(e as Error).message}`, e);
  }
  await channel.send('nonce-send', encodeNonceFrame(encryptedClientNonce));
  return deriveSessionKey(clientNonce, serverNonce);
}
