import { type KeyObject, createPublicKey, generateKeyPair, randomBytes, sign as rsaSign } from 'node:crypto';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { promisify } from 'node:util';
import { tdesEcbEncrypt } from '../../crypto/des.js';
import {
  SAM_FRAME_END,
  SAM_HELLO,
  SAM_L_KEY,
  SAM_MESSAGE,
  SAM_RC_OK,
  type SamField,
  decryptFrameBody,
  deriveSessionKey,
  encodeSamMessage,
  encodeServerHello,
  encryptFrame,
  findEncryptedFrameEnd,
  parseNonceFrame,
  parseSamMessage,
  rsaPkcs1Decrypt,
  rsaPkcs1Encrypt,
} from '../../services/nhi/sam-protocol.js';
import { NHI_TEST_MASTER_SECRET, SAM_RANDOM_LENGTH, nhiTestCardKey, nhiTestSamAuthData, nhiTestVerifyCardReply } from './test-auth.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Where a scripted fault strikes: the answer to the handshake, to `77`, to `01` or to `03`. */
export type SamFaultStep = 'handshake' | 'health' | 'authenticate' | 'sign';

/**
 * Misbehaviour for tests, applied to the emulated SAM's answer at one step:
 * - close: close the connection instead of answering;
 * - stall: never answer;
 * - truncate: send the first half of the right frame, then close;
 * - slow: send the right frame one byte every `byteDelayMs`;
 * - oversize: send `bytes` bytes of filler and no end of frame;
 * - garbage: random whole blocks then `<E>` (does not decrypt);
 * - extra: the right frame followed by a second, unrequested one;
 * - wrong-length: a field of the wrong size (handshake: 8-byte server nonce; health: rc of 3
 *   characters; authenticate: au of 31 bytes; sign: si of 255 bytes);
 * - reject: result code "NG" (handshake: a PEM that is not a key);
 * - unexpected: a well-formed message of the wrong type (handshake: nonce under another key).
 */
export type SamFault =
  | { step: SamFaultStep; kind: 'close' | 'stall' | 'truncate' | 'garbage' | 'extra' | 'wrong-length' | 'reject' | 'unexpected' }
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
}

export interface EmulatedSamRecord {
  cardId: Buffer;
  toBeSigned: string;
  signature: Buffer;
}

interface ConnectionState {
  sessionKey?: Buffer;
  serverNonce?: Buffer;
  serverEncryptedNonceLength?: number;
  cardId?: Buffer;
  cardChallenge?: Buffer;
  samRandom?: Buffer;
}

/**
 * A stand-in for NHI's cloud SAM, for tests and the demo only: it speaks the real framing and
 * handshake, authenticates virtual NHI cards with the test-only scheme of `test-auth.ts`, and
 * signs the 20-character string with its own RSA-2048 key (PKCS#1 v1.5, SHA-256) so tests can
 * verify the 256-byte result with `publicKey`. It listens on 127.0.0.1, on a free port by default.
 */
export class EmulatedSam {
  /** Every signature handed out, for tests. */
  readonly signed: EmulatedSamRecord[] = [];
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
    private readonly maxFrameBytes: number,
  ) {}

  static async start(options: EmulatedSamOptions = {}): Promise<EmulatedSam> {
    const [handshake, signing] = await Promise.all([
      generateKeyPairAsync('rsa', { modulusLength: 1024 }),
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
      options.maxFrameBytes ?? 8192,
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
    const state: ConnectionState = {};
    let buffer = Buffer.alloc(0);
    let phase: 'hello' | 'nonce' | 'session' = 'hello';
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        for (;;) {
          if (buffer.length > this.maxFrameBytes) throw new Error('frame too large');
          if (phase === 'nonce') {
            const frame = parseNonceFrame(buffer);
            if (!frame) return;
            buffer = buffer.subarray(frame.frameLength);
            this.acceptClientNonce(state, frame.encrypted);
            phase = 'session';
            continue;
          }
          const end = findEncryptedFrameEnd(buffer);
          if (end === -1) return;
          const body = buffer.subarray(0, end);
          buffer = buffer.subarray(end + SAM_FRAME_END.length);
          if (phase === 'hello') {
            this.answerHello(socket, state, body);
            phase = 'nonce';
          } else {
            this.answerMessage(socket, state, body);
          }
        }
      } catch {
        // A real server hangs up on a client that does not follow the protocol.
        socket.destroy();
      }
    });
  }

  private answerHello(socket: Socket, state: ConnectionState, body: Buffer): void {
    const plain = decryptFrameBody(SAM_L_KEY, body);
    if (!plain.subarray(0, SAM_HELLO.length).equals(SAM_HELLO)) throw new Error('no Hello');
    const clientKey = createPublicKey(plain.subarray(SAM_HELLO.length).toString('latin1'));
    const fault = this.faultFor('handshake');
    state.serverNonce = randomBytes(fault?.kind === 'wrong-length' ? 4 : 16);
    let encryptedNonce = rsaPkcs1Encrypt(clientKey, state.serverNonce);
    let pem = this.handshakePublicPem;
    // A PEM whose base64 body is not a key (the markers stay, so only the key parse fails).
    if (fault?.kind === 'reject') pem = pem.split('\n').map((line) => (line.startsWith('-----') ? line : line.replace(/[A-Za-z0-9+/]/g, 'A'))).join('\n');
    if (fault?.kind === 'unexpected') encryptedNonce = rsaPkcs1Encrypt(createPublicKey(this.handshakeKey), state.serverNonce);
    const frame = encryptFrame(SAM_L_KEY, encodeServerHello(pem, encryptedNonce));
    this.send(socket, frame, fault, SAM_L_KEY);
  }

  private acceptClientNonce(state: ConnectionState, encrypted: Buffer): void {
    const clientNonce = rsaPkcs1Decrypt(this.handshakeKey, encrypted);
    state.sessionKey = deriveSessionKey(clientNonce, state.serverNonce!);
  }

  private answerMessage(socket: Socket, state: ConnectionState, body: Buffer): void {
    const key = state.sessionKey;
    if (!key) throw new Error('no session');
    const message = parseSamMessage(decryptFrameBody(key, body));
    const result = (rc: string, fields: SamField[] = []) => encodeSamMessage(SAM_MESSAGE.result, [['rc', rc], ...fields]);
    switch (message.type) {
      case SAM_MESSAGE.healthCheck: {
        const fault = this.faultFor('health');
        const reply =
          fault?.kind === 'wrong-length' ? result('OKK') : fault?.kind === 'reject' ? result('NG') : fault?.kind === 'unexpected' ? encodeSamMessage('02') : result(SAM_RC_OK);
        this.send(socket, encryptFrame(key, reply), fault, key);
        return;
      }
      case SAM_MESSAGE.authRequest: {
        const fault = this.faultFor('authenticate');
        const cardId = message.fields.get('id');
        const challenge = message.fields.get('rn');
        let reply: Buffer;
        if (!cardId || cardId.length !== 12 || !challenge || challenge.length !== 8 || fault?.kind === 'reject') {
          reply = result('NG');
        } else {
          state.cardId = cardId;
          state.cardChallenge = challenge;
          state.samRandom = randomBytes(SAM_RANDOM_LENGTH);
          const au = nhiTestSamAuthData(nhiTestCardKey(cardId, this.masterSecret), challenge, state.samRandom);
          reply =
            fault?.kind === 'wrong-length'
              ? encodeSamMessage(SAM_MESSAGE.authResponse, [['au', au.subarray(0, 31)]])
              : fault?.kind === 'unexpected'
                ? encodeSamMessage(SAM_MESSAGE.healthCheck)
                : encodeSamMessage(SAM_MESSAGE.authResponse, [['au', au]]);
        }
        this.send(socket, encryptFrame(key, reply), fault, key);
        return;
      }
      case SAM_MESSAGE.signRequest: {
        const fault = this.faultFor('sign');
        const cardReply = message.fields.get('au');
        const toBeSigned = message.fields.get('se');
        const { cardId, cardChallenge, samRandom } = state;
        state.samRandom = undefined; // one signature per card authentication
        const authenticated =
          cardId !== undefined &&
          cardChallenge !== undefined &&
          samRandom !== undefined &&
          cardReply !== undefined &&
          nhiTestVerifyCardReply(nhiTestCardKey(cardId, this.masterSecret), cardChallenge, samRandom, cardReply);
        let reply: Buffer;
        if (!authenticated || !toBeSigned || toBeSigned.length !== 20 || fault?.kind === 'reject') {
          reply = result('NG');
        } else {
          const signature = rsaSign('sha256', toBeSigned, this.signingKey);
          this.signed.push({ cardId: cardId!, toBeSigned: toBeSigned.toString('latin1'), signature });
          reply =
            fault?.kind === 'wrong-length'
              ? result(SAM_RC_OK, [['si', signature.subarray(0, 255)]])
              : fault?.kind === 'unexpected'
                ? encodeSamMessage(SAM_MESSAGE.authResponse, [['au', randomBytes(32)]])
                : result(SAM_RC_OK, [['si', signature]]);
        }
        this.send(socket, encryptFrame(key, reply), fault, key);
        return;
      }
      default:
        this.send(socket, encryptFrame(key, result('NG')), undefined, key);
    }
  }

  private faultFor(step: SamFaultStep): SamFault | undefined {
    return this.fault?.step === step ? this.fault : undefined;
  }

  /** Sends a frame, or misbehaves as the fault says. */
  private send(socket: Socket, frame: Buffer, fault: SamFault | undefined, key: Buffer): void {
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
        socket.write(Buffer.concat([tdesEcbEncrypt(key, junk), SAM_FRAME_END]));
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
