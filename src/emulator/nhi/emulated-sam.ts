import { type KeyObject, createPublicKey, generateKeyPair, randomBytes, randomInt, sign as rsaSign } from 'node:crypto';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { promisify } from 'node:util';
import { tdesEcbEncrypt } from '../../crypto/des.js';
import {
  SAM_CLIENT_RSA_BITS,
  SAM_FRAME_END,
  SAM_HEALTH_OK,
  SAM_HEALTH_REQUEST,
  SAM_L_KEY,
  SAM_SIGN_INPUT_LENGTH,
  deriveSessionKey,
  encodeAuthResponse,
  encodeRefusal,
  encodeServerHello,
  encodeSignResult,
  findEncryptedFrameEnd,
  openFrameBody,
  parseAuthRequest,
  parseClientHello,
  parseNonceFrame,
  parseSignRequest,
  rsaPkcs1Decrypt,
  rsaPkcs1Encrypt,
  sealFrame,
} from '../../remote/nhi-sam/sam-protocol.js';
import { NHI_TEST_MASTER_SECRET, SAM_RANDOM_LENGTH, nhiTestCardKey, nhiTestSamAuthData, nhiTestVerifyCardReply } from './test-auth.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Where a scripted fault strikes: the answer to the hello, to the plain `77`, to `01` or to `03`. */
export type SamFaultStep = 'handshake' | 'health' | 'authenticate' | 'sign';

/**
 * Misbehaviour for tests, applied to the emulated SAM's answer at one step:
 * - close: close the connection instead of answering;
 * - stall: never answer;
 * - truncate: send the first half of the right frame, then close;
 * - slow: send the right frame one byte every `byteDelayMs`;
 * - oversize: send `bytes` bytes of filler and no end of frame;
 * - garbage: random whole blocks then `<E>` (does not decrypt; health: random bytes then `<E>`);
 * - extra: the right frame followed by a second, unrequested one;
 * - wrong-length: a field of the wrong size (handshake: 4-byte server nonce; health: rc of 3
 *   characters; authenticate: au of 31 bytes; sign: si of 255 bytes);
 * - reject: `04<rc=2>NG<E>` (handshake: a PEM of the right size that is not a key);
 * - unexpected: a well-formed message of the wrong type (handshake: nonce under another key);
 * - old-framing: the right answer without the `<E>` inside its plaintext (authenticate, sign).
 */
export type SamFault =
  | { step: SamFaultStep; kind: 'close' | 'stall' | 'truncate' | 'garbage' | 'extra' | 'wrong-length' | 'reject' | 'unexpected' | 'old-framing' }
  | { step: SamFaultStep; kind: 'slow'; byteDelayMs: number }
  | { step: SamFaultStep; kind: 'oversize'; bytes: number };

export interface EmulatedSamOptions {
  /** Always loopback unless a test says otherwise. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The test master secret shared with the virtual cards (default NHI_TEST_MASTER_SECRET). */
  masterSecret?: Buffer;
  /** RSA-2048 signing key; generated when absent. */
  signingKey?: KeyObject;
  fault?: SamFault;
  /** Drop a client sending more than this without finishing a frame (default 8192). */
  maxFrameBytes?: number;
  /**
   * Hang up on a client whose frame stays incomplete this long (default 2000 ms): a frame
   * without its `<E>` never ends, and a server does not wait for ever.
   */
  incompleteFrameTimeoutMs?: number;
  /**
   * The five bytes between the PEM and the nonce of the server hello, and what follows the
   * nonce. Their real content has never been published, so by default they are random on every
   * connection: a client that insists on any particular content fails.
   */
  helloBetween?: Buffer;
  helloAfter?: Buffer;
}

export interface EmulatedSamRecord {
  cardId: Buffer;
  toBeSigned: string;
  signature: Buffer;
}

/**
 * Where a connection is: waiting for the hello, for the client's nonce, for a message, or done
 * with the plain health check (after which nothing more is accepted on it).
 */
type Phase = 'hello' | 'nonce' | 'session' | 'health-done';

interface ConnectionState {
  phase: Phase;
  sessionKey?: Buffer;
  serverNonce?: Buffer;
  /** Set once a message has been exchanged: the plain health check only comes first. */
  signing?: boolean;
  cardId?: Buffer;
  cardChallenge?: Buffer;
  samRandom?: Buffer;
}

/** A client that does not follow the protocol: the connection is closed without an answer. */
class Refused extends Error {}

const CLIENT_NONCE_LENGTH = 16;

/**
 * A stand-in for NHI's cloud SAM, for tests and the demo only. It speaks exactly the framing of
 * specs/nhi-card.md and hangs up on anything else, as a server would: the old framing (no `<E>`
 * inside a plaintext), an encrypted `77`, a hello whose PEM keeps its newline, a frame whose
 * `<E>` never comes, messages out of order. It authenticates virtual NHI cards with the
 * test-only scheme of `test-auth.ts`, and signs the 20 characters with its own RSA-2048 key
 * (PKCS#1 v1.5, SHA-256) so tests can verify the 256-byte result with `publicKey`. It listens
 * on 127.0.0.1, on a free port by default.
 */
export class EmulatedSam {
  /** Every signature handed out, for tests. */
  readonly signed: EmulatedSamRecord[] = [];
  /** How many connections were closed because the client broke the protocol, for tests. */
  refusals = 0;
  fault: SamFault | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
    private readonly handshakeKey: KeyObject,
    private readonly handshakePublicPem: string,
    private readonly signingKey: KeyObject,
    private readonly masterSecret: Buffer,
    private readonly options: EmulatedSamOptions,
  ) {}

  static async start(options: EmulatedSamOptions = {}): Promise<EmulatedSam> {
    const [handshake, signing] = await Promise.all([
      generateKeyPairAsync('rsa', { modulusLength: SAM_CLIENT_RSA_BITS }),
      options.signingKey ? Promise.resolve({ privateKey: options.signingKey }) : generateKeyPairAsync('rsa', { modulusLength: 2048 }),
    ]);
    const server = createServer();
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const sam = new EmulatedSam(
      server,
      host,
      port,
      handshake.privateKey,
      handshake.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      signing.privateKey,
      options.masterSecret ?? NHI_TEST_MASTER_SECRET,
      options,
    );
    sam.fault = options.fault;
    server.on('connection', (socket) => sam.serve(socket));
    return sam;
  }

  /** The key that verifies the 256-byte signatures. */
  get publicKey(): KeyObject {
    return createPublicKey(this.signingKey);
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const state: ConnectionState = { phase: 'hello' };
    const maxFrameBytes = this.options.maxFrameBytes ?? 8192;
    let buffer = Buffer.alloc(0);
    let incomplete: NodeJS.Timeout | undefined;
    const refuse = () => {
      this.refusals++;
      socket.destroy();
    };
    socket.on('close', () => clearTimeout(incomplete));
    socket.on('data', (chunk: Buffer) => {
      clearTimeout(incomplete);
      buffer = Buffer.concat([buffer, chunk]);
      try {
        for (;;) {
          if (buffer.length > maxFrameBytes) throw new Refused('frame too large');
          const used = this.step(socket, state, buffer);
          if (used === 0) break;
          buffer = buffer.subarray(used);
          if (buffer.length === 0) break;
        }
      } catch {
        // A real server hangs up on a client that does not follow the protocol.
        refuse();
        return;
      }
      if (buffer.length > 0) {
        incomplete = setTimeout(refuse, this.options.incompleteFrameTimeoutMs ?? 2000);
        incomplete.unref();
      }
    });
  }

  /** Handles one complete unit at the start of `buffer`; returns the bytes used, 0 while incomplete. Throws to refuse. */
  private step(socket: Socket, state: ConnectionState, buffer: Buffer): number {
    switch (state.phase) {
      case 'hello': {
        const end = findEncryptedFrameEnd(buffer);
        if (end === -1) return 0;
        this.answerHello(socket, state, openFrameBody(SAM_L_KEY, buffer.subarray(0, end)));
        state.phase = 'nonce';
        return end + SAM_FRAME_END.length;
      }
      case 'nonce': {
        const frame = parseNonceFrame(buffer);
        if (!frame) return 0;
        this.acceptClientNonce(state, frame.encrypted);
        state.phase = 'session';
        return frame.frameLength;
      }
      case 'session': {
        // The plain health check, only as the first thing after the handshake.
        if (!state.signing && buffer.length < SAM_HEALTH_REQUEST.length && SAM_HEALTH_REQUEST.subarray(0, buffer.length).equals(buffer)) return 0;
        if (!state.signing && buffer.subarray(0, SAM_HEALTH_REQUEST.length).equals(SAM_HEALTH_REQUEST)) {
          state.phase = 'health-done';
          this.answerHealth(socket);
          return SAM_HEALTH_REQUEST.length;
        }
        const end = findEncryptedFrameEnd(buffer);
        if (end === -1) return 0;
        state.signing = true;
        this.answerMessage(socket, state, openFrameBody(state.sessionKey!, buffer.subarray(0, end)));
        return end + SAM_FRAME_END.length;
      }
      case 'health-done':
        throw new Refused('the health-check connection carries nothing else');
    }
  }

  private answerHello(socket: Socket, state: ConnectionState, plain: Buffer): void {
    const clientKey = createPublicKey(parseClientHello(plain));
    if (clientKey.asymmetricKeyType !== 'rsa' || clientKey.asymmetricKeyDetails?.modulusLength !== SAM_CLIENT_RSA_BITS) throw new Refused('not an RSA-1024 key');
    const fault = this.faultFor('handshake');
    state.serverNonce = randomBytes(fault?.kind === 'wrong-length' ? 4 : 16);
    let encryptedNonce = rsaPkcs1Encrypt(clientKey, state.serverNonce);
    let pem = this.handshakePublicPem;
    // A PEM of the right size whose base64 body is not a key: only the key parse fails.
    if (fault?.kind === 'reject') pem = pem.split('\n').map((line) => (line.startsWith('-----') ? line : line.replace(/[A-Za-z0-9+/]/g, 'A'))).join('\n');
    if (fault?.kind === 'unexpected') encryptedNonce = rsaPkcs1Encrypt(createPublicKey(this.handshakeKey), state.serverNonce);
    const between = this.options.helloBetween ?? randomBytes(5);
    const after = this.options.helloAfter ?? randomBytes(randomInt(0, 16));
    this.send(socket, sealFrame(SAM_L_KEY, encodeServerHello(pem, between, encryptedNonce, after)), fault, SAM_L_KEY);
  }

  private acceptClientNonce(state: ConnectionState, encrypted: Buffer): void {
    const clientNonce = rsaPkcs1Decrypt(this.handshakeKey, encrypted);
    if (clientNonce.length !== CLIENT_NONCE_LENGTH) throw new Refused(`a client nonce of ${clientNonce.length} bytes`);
    state.sessionKey = deriveSessionKey(clientNonce, state.serverNonce!);
  }

  private answerHealth(socket: Socket): void {
    const fault = this.faultFor('health');
    const reply =
      fault?.kind === 'wrong-length'
        ? Buffer.from('04<rc=3>OKK<E>', 'latin1')
        : fault?.kind === 'reject'
          ? encodeRefusal('NG')
          : fault?.kind === 'unexpected'
            ? Buffer.from('02<E>', 'latin1')
            : SAM_HEALTH_OK;
    if (fault?.kind === 'garbage') {
      socket.write(Buffer.concat([randomBytes(10), SAM_FRAME_END]));
      return;
    }
    this.send(socket, reply, fault, undefined);
  }

  private answerMessage(socket: Socket, state: ConnectionState, plain: Buffer): void {
    const key = state.sessionKey!;
    const type = plain.subarray(0, 2).toString('latin1');
    if (type === '01') {
      const { cardId, challenge } = parseAuthRequest(plain);
      const fault = this.faultFor('authenticate');
      state.cardId = cardId;
      state.cardChallenge = challenge;
      state.samRandom = randomBytes(SAM_RANDOM_LENGTH);
      const au = nhiTestSamAuthData(nhiTestCardKey(cardId, this.masterSecret), challenge, state.samRandom);
      const reply =
        fault?.kind === 'reject'
          ? encodeRefusal('NG')
          : fault?.kind === 'wrong-length'
            ? Buffer.concat([Buffer.from('02<au=31>', 'latin1'), au.subarray(0, 31), SAM_FRAME_END])
            : fault?.kind === 'unexpected'
              ? encodeSignResult(randomBytes(256))
              : fault?.kind === 'old-framing'
                ? encodeAuthResponse(au).subarray(0, -SAM_FRAME_END.length)
                : encodeAuthResponse(au);
      this.send(socket, sealFrame(key, reply), fault, key);
      return;
    }
    if (type === '03') {
      const { cardId, cardChallenge, samRandom } = state;
      // 03 answers one 01: without one (or a second time) the client is not following the protocol.
      if (!cardId || !cardChallenge || !samRandom) throw new Refused('03 without a preceding 01');
      const { cardReply, input } = parseSignRequest(plain);
      if (input.length !== SAM_SIGN_INPUT_LENGTH) throw new Refused('the string to sign is not 20 characters');
      state.samRandom = undefined;
      const fault = this.faultFor('sign');
      const authenticated = nhiTestVerifyCardReply(nhiTestCardKey(cardId, this.masterSecret), cardChallenge, samRandom, cardReply);
      let reply: Buffer;
      if (!authenticated || fault?.kind === 'reject') {
        reply = encodeRefusal('NG');
      } else {
        const signature = rsaSign('sha256', Buffer.from(input, 'latin1'), this.signingKey);
        this.signed.push({ cardId, toBeSigned: input, signature });
        reply =
          fault?.kind === 'wrong-length'
            ? Buffer.concat([Buffer.from('04<rc=2>OK<si=255>', 'latin1'), signature.subarray(0, 255), SAM_FRAME_END])
            : fault?.kind === 'unexpected'
              ? encodeAuthResponse(randomBytes(32))
              : fault?.kind === 'old-framing'
                ? encodeSignResult(signature).subarray(0, -SAM_FRAME_END.length)
                : encodeSignResult(signature);
      }
      this.send(socket, sealFrame(key, reply), fault, key);
      return;
    }
    // Including an encrypted 77: the health check is plain, on a connection of its own.
    throw new Refused(`message type ${JSON.stringify(type)}`);
  }

  private faultFor(step: SamFaultStep): SamFault | undefined {
    return this.fault?.step === step ? this.fault : undefined;
  }

  /** Sends a frame, or misbehaves as the fault says. */
  private send(socket: Socket, frame: Buffer, fault: SamFault | undefined, key: Buffer | undefined): void {
    switch (fault?.kind) {
      case 'close':
        socket.destroy();
        return;
      case 'stall':
        return;
      case 'truncate':
        socket.end(frame.subarray(0, Math.floor(frame.length / 2)));
        return;
      case 'garbage': {
        // Random blocks whose last plaintext byte is 00: never valid padding, so the result
        // does not depend on chance.
        const junk = randomBytes(frame.length - SAM_FRAME_END.length);
        junk[junk.length - 1] = 0;
        socket.write(Buffer.concat([key ? tdesEcbEncrypt(key, junk) : junk, SAM_FRAME_END]));
        return;
      }
      case 'extra':
        socket.write(Buffer.concat([frame, frame]));
        return;
      case 'oversize':
        socket.write(Buffer.alloc(fault.bytes, 0x41));
        return;
      case 'slow': {
        let i = 0;
        const drip = () => {
          if (socket.destroyed || i >= frame.length) return;
          socket.write(frame.subarray(i, i + 1));
          i++;
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            drip();
          }, fault.byteDelayMs);
          this.timers.add(timer);
        };
        drip();
        return;
      }
      default:
        socket.write(frame);
    }
  }
}
