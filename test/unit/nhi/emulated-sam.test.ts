import { type KeyObject, constants, createCipheriv, createDecipheriv, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, verify } from 'node:crypto';
import { Socket, connect } from 'node:net';
import { EmulatedSam } from '../../../src/emulator/nhi/emulated-sam.js';
import { nhiTestCardKey, nhiTestCardReply } from '../../../src/emulator/nhi/test-auth.js';

/*
 * The emulated SAM must speak exactly the framing of specs/nhi-card.md ("Web login signature
 * (H_Sign) via NHI's cloud SAM") and hang up on anything else, as a server would. This file
 * talks to it with a client written here from the spec with node:crypto alone — not with the
 * bridge's codec — so that the emulator and the bridge cannot agree on one mistake.
 */

const E = Buffer.from('<E>', 'latin1');
const L_KEY = Buffer.concat([Buffer.from('2725268641815652', 'latin1'), Buffer.alloc(8)]);
const CLIENT = generateKeyPairSync('rsa', { modulusLength: 1024 });
const CARD_ID = Buffer.from('000011112222', 'latin1');
const CHALLENGE = Buffer.from('0102030405060708', 'hex');
const CLIENT_NONCE = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const INPUT = '00011234567890123456';
const ascii = (s: string) => Buffer.from(s, 'latin1');

/** 3DES-ECB with PKCS#5 padding (OpenSSL's automatic padding is PKCS#5 for 8-byte blocks). */
function encrypt(key: Buffer, plain: Buffer): Buffer {
  const c = createCipheriv('des-ede3-ecb', key, null);
  return Buffer.concat([c.update(plain), c.final()]);
}

function decrypt(key: Buffer, body: Buffer): Buffer {
  const d = createDecipheriv('des-ede3-ecb', key, null);
  return Buffer.concat([d.update(body), d.final()]);
}

/** RSA PKCS#1 v1.5 decryption, unpadded by hand (Node 20 refuses the padded mode). */
function rsaDecrypt(privateKey: KeyObject, ciphertext: Buffer): Buffer {
  const block = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
  expect(block.subarray(0, 2)).toEqual(Buffer.from([0, 2]));
  return block.subarray(block.indexOf(0, 2) + 1);
}

/** A raw TCP peer: collects what the server sends and notices when it hangs up. */
class Peer {
  private buffer = Buffer.alloc(0);
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.buffer = Buffer.concat([this.buffer, chunk])));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => ((this.isClosed = true), resolve())));
  }

  static open(sam: EmulatedSam): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: sam.host, port: sam.port }, () => resolve(new Peer(socket)));
      socket.once('error', reject);
    });
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** Waits until the buffered bytes satisfy `complete`, then takes them all. */
  async take(complete: (b: Buffer) => boolean, timeoutMs = 2000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!complete(this.buffer)) {
      if (this.isClosed) throw new Error(`the server closed the connection (had ${this.buffer.length} bytes)`);
      if (Date.now() > deadline) throw new Error(`no complete answer in ${timeoutMs} ms (had ${this.buffer.length} bytes)`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const all = this.buffer;
    this.buffer = Buffer.alloc(0);
    return all;
  }

  /** An encrypted frame: whole 3DES blocks then `<E>`. */
  takeFrame(): Promise<Buffer> {
    return this.take((b) => b.length > 3 && (b.length - 3) % 8 === 0 && b.subarray(-3).equals(E)).then((b) => b.subarray(0, -3));
  }

  /** Resolves when the server hangs up without having sent anything more; fails if it answers or stays open. */
  async expectHangUp(timeoutMs = 1500): Promise<void> {
    const timer = new Promise<'open'>((r) => setTimeout(() => r('open'), timeoutMs));
    const outcome = await Promise.race([this.closed.then(() => 'closed' as const), timer]);
    expect({ outcome, answered: this.buffer.length }).toEqual({ outcome: 'closed', answered: 0 });
  }

  close(): void {
    this.socket.destroy();
  }
}

function clientPem(): string {
  const pem = CLIENT.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  expect(pem.endsWith('\n')).toBe(true);
  return pem.slice(0, -1); // the spec: the trailing newline is removed
}

/** Steps 1–2 of the spec: the hello, the server hello at its fixed offsets, our nonce. */
async function handshake(peer: Peer, pem = clientPem()): Promise<{ sessionKey: Buffer; serverKey: KeyObject; hello: Buffer }> {
  peer.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(pem)])), E);
  const hello = decrypt(L_KEY, await peer.takeFrame());
  expect(hello.subarray(0, 6).toString('latin1')).toBe('Hello ');
  const serverKey = createPublicKey(hello.subarray(6, 0x116).toString('latin1'));
  const serverNonce = rsaDecrypt(CLIENT.privateKey, hello.subarray(0x11b, 0x11b + 0x80));
  const encrypted = publicEncrypt({ key: serverKey, padding: constants.RSA_PKCS1_PADDING }, CLIENT_NONCE);
  peer.send(ascii(` ${encrypted.length} `), encrypted, E);
  return { sessionKey: Buffer.concat([CLIENT_NONCE, serverNonce]).subarray(0, 24), serverKey, hello };
}

const message01 = () => Buffer.concat([ascii('01<id=12>'), CARD_ID, ascii('<rn=8>'), CHALLENGE, E]);

let sam: EmulatedSam;
const peers: Peer[] = [];

beforeAll(async () => {
  sam = await EmulatedSam.start({ incompleteFrameTimeoutMs: 300 });
});
afterAll(async () => {
  await sam.close();
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

async function peer(): Promise<Peer> {
  const p = await Peer.open(sam);
  peers.push(p);
  return p;
}

describe('emulated SAM: the conversation of the spec', () => {
  it('server hello: Hello, a 1024-bit key PEM at [6, 0x116), a 128-byte nonce at [0x11B, 0x19B)', async () => {
    const p = await peer();
    const { serverKey, hello } = await handshake(p);
    expect(serverKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(hello.length).toBeGreaterThanOrEqual(0x19b);
  });

  it('01 → 02<au=32>…<E>, 03 → 04<rc=2>OK<si=256>…<E>; the 256 bytes verify', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, message01()), E);
    const m02 = decrypt(sessionKey, await p.takeFrame());
    expect(m02.length).toBe(9 + 32 + 3);
    expect(m02.subarray(0, 9).toString('latin1')).toBe('02<au=32>');
    expect(m02.subarray(-3)).toEqual(E);
    const cardReply = nhiTestCardReply(nhiTestCardKey(CARD_ID), CHALLENGE, m02.subarray(9, 41));
    expect(cardReply).toHaveLength(16);
    p.send(encrypt(sessionKey, Buffer.concat([ascii('03<au=16>'), cardReply!, ascii('<se=20>'), ascii(INPUT), E])), E);
    const m04 = decrypt(sessionKey, await p.takeFrame());
    expect(m04.length).toBe(18 + 256 + 3);
    expect(m04.subarray(0, 18).toString('latin1')).toBe('04<rc=2>OK<si=256>');
    expect(m04.subarray(-3)).toEqual(E);
    expect(verify('sha256', ascii(INPUT), sam.publicKey, m04.subarray(18, 274))).toBe(true);
  });

  it('plain 77<E> after the handshake → the plain 13 bytes 04<rc=2>OK<E>', async () => {
    const p = await peer();
    await handshake(p);
    p.send(ascii('77<E>'));
    expect((await p.take((b) => b.length >= 13)).toString('latin1')).toBe('04<rc=2>OK<E>');
  });
});

describe('emulated SAM: hangs up on anything else', () => {
  it('an encrypted 77 (the old health check on the signing connection)', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, ascii('77<E>')), E);
    await p.expectHangUp();
  });

  it('an encrypted 77 without the inner <E> (the old framing)', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, ascii('77')), E);
    await p.expectHangUp();
  });

  it('01 whose plaintext lacks the inner <E> (the old framing)', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, message01().subarray(0, -3)), E);
    await p.expectHangUp();
  });

  it('03 whose plaintext lacks the inner <E>', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, message01()), E);
    const m02 = decrypt(sessionKey, await p.takeFrame());
    const cardReply = nhiTestCardReply(nhiTestCardKey(CARD_ID), CHALLENGE, m02.subarray(9, 41))!;
    p.send(encrypt(sessionKey, Buffer.concat([ascii('03<au=16>'), cardReply, ascii('<se=20>'), ascii(INPUT)])), E);
    await p.expectHangUp();
  });

  it('01 with no <E> after the ciphertext (closed once the frame stays incomplete)', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, message01()));
    await p.expectHangUp();
  });

  it('a hello with no <E> after the ciphertext', async () => {
    const p = await peer();
    p.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(clientPem())])));
    await p.expectHangUp();
  });

  it('a hello whose PEM keeps its trailing newline (the old client)', async () => {
    const p = await peer();
    p.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(`${clientPem()}\n`)])), E);
    await p.expectHangUp();
  });

  it('a hello carrying a 2048-bit key (the server nonce would not be 128 bytes)', async () => {
    const big = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString().slice(0, -1);
    const p = await peer();
    p.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(big)])), E);
    await p.expectHangUp();
  });

  it('a hello that is not under L_KEY', async () => {
    const p = await peer();
    p.send(encrypt(Buffer.alloc(24, 7), Buffer.concat([ascii('Hello '), ascii(clientPem())])), E);
    await p.expectHangUp();
  });

  it('a client nonce frame without its <E>', async () => {
    const p = await peer();
    p.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(clientPem())])), E);
    const hello = decrypt(L_KEY, await p.takeFrame());
    const serverKey = createPublicKey(hello.subarray(6, 0x116).toString('latin1'));
    const encrypted = publicEncrypt({ key: serverKey, padding: constants.RSA_PKCS1_PADDING }, CLIENT_NONCE);
    p.send(ascii(` ${encrypted.length} `), encrypted);
    await p.expectHangUp();
  });

  it('a client nonce sent encrypted under L_KEY instead of " <len> <bytes><E>"', async () => {
    const p = await peer();
    p.send(encrypt(L_KEY, Buffer.concat([ascii('Hello '), ascii(clientPem())])), E);
    await p.takeFrame();
    p.send(encrypt(L_KEY, CLIENT_NONCE), E);
    await p.expectHangUp();
  });

  it('03 before any 01', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(encrypt(sessionKey, Buffer.concat([ascii('03<au=16>'), Buffer.alloc(16), ascii('<se=20>'), ascii(INPUT), E])), E);
    await p.expectHangUp();
  });

  it('a message on the connection that served the plain health check', async () => {
    const p = await peer();
    const { sessionKey } = await handshake(p);
    p.send(ascii('77<E>'));
    await p.take((b) => b.length >= 13);
    p.send(encrypt(sessionKey, message01()), E);
    await p.expectHangUp();
  });
});
