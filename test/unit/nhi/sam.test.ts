import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { type AddressInfo, type Server, Socket, createServer } from 'node:net';
import { CardBridgeError } from '../../../src/errors.js';
import { EmulatedSam, type SamFault, type SamFaultStep } from '../../../src/emulator/nhi/emulated-sam.js';
import { nhiTestCardKey } from '../../../src/emulator/nhi/test-auth.js';
import { VirtualNhiCard, type VirtualNhiCardOptions } from '../../../src/emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../../../src/emulator/virtual-card.js';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { nhiErrorCode } from '../../../src/server/nhi/error-codes.js';
import { NhiService } from '../../../src/services/nhi/nhi-service.js';
import { SamClientError, type SamClientOptions, type SamFailureReason, SamSession } from '../../../src/services/nhi/sam-client.js';
import {
  SAM_L_KEY,
  decryptFrameBody,
  encodeSamMessage,
  encodeServerHello,
  encryptFrame,
  findEncryptedFrameEnd,
  parseNonceFrame,
  parseSamMessage,
  parseServerHello,
  rsaPkcs1Decrypt,
  rsaPkcs1Encrypt,
} from '../../../src/services/nhi/sam-protocol.js';
import { SelfRemovingCard, caught, failingCard } from './helpers.js';


const READER = 'Reader 0';
const RANDOM = '00011234567890123456';
let sam: EmulatedSam;

beforeAll(async () => {
  sam = await EmulatedSam.start();
}, 5000);

afterAll(async () => {
  await sam.close();
});

afterEach(() => {
  sam.fault = undefined;
});

function samOptions(extra: SamClientOptions = {}): SamClientOptions {
  return { host: sam.host, port: sam.port, connectTimeoutMs: 1000, stepTimeoutMs: 400, maxFrameBytes: 1024, ...extra };
}

async function serviceWith(card: VirtualCard = new VirtualNhiCard(), options: SamClientOptions = samOptions()) {
  const registry = new MockReaderRegistry();
  registry.addReader(READER);
  await registry.insertCard(READER, card);
  return { registry, service: new NhiService(registry, { sam: options }) };
}

describe('SAM wire format', () => {
  it('frames: 3DES-ECB under L_KEY, PKCS#5, then <E>', () => {
    expect(SAM_L_KEY).toEqual(Buffer.concat([Buffer.from('2725268641815652'), Buffer.alloc(8)]));
    const frame = encryptFrame(SAM_L_KEY, Buffer.from('Hello x'));
    expect(frame.subarray(-3).toString()).toBe('<E>');
    expect((frame.length - 3) % 8).toBe(0);
    expect(findEncryptedFrameEnd(frame)).toBe(frame.length - 3);
    expect(decryptFrameBody(SAM_L_KEY, frame.subarray(0, -3)).toString()).toBe('Hello x');
    // An <E> inside the body at an unaligned offset is not the end of the frame.
    expect(findEncryptedFrameEnd(Buffer.from('ab<E>cde<E>'))).toBe(8);
    expect(findEncryptedFrameEnd(Buffer.from('abcdefgh<E'))).toBe(-1);
  });

  it('server hello: PEM at [6, 0x116), nonce at [0x11B, 0x19B) for RSA-1024', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const plain = encodeServerHello(pem, Buffer.alloc(128, 0xaa));
    expect(plain.length).toBe(0x19b);
    expect(plain.subarray(6, 0x116).toString()).toBe(pem);
    expect(plain.subarray(0x116, 0x11b).toString()).toBe(' 128 ');
    const parsed = parseServerHello(plain);
    expect(parsed.nonceOffset).toBe(0x11b);
    expect(parsed.encryptedNonce).toEqual(Buffer.alloc(128, 0xaa));
    expect(() => parseServerHello(Buffer.from('Howdy '))).toThrow(/Hello/);
    expect(() => parseServerHello(plain.subarray(0, 0x19a))).toThrow(/127/);
  });

  it('nonce frame " <len> <bytes><E>" and messages "<tag=len>"', () => {
    const frame = Buffer.concat([Buffer.from(' 3 '), Buffer.from('a<E'), Buffer.from('<E>')]);
    expect(parseNonceFrame(frame)).toEqual({ frameLength: 9, encrypted: Buffer.from('a<E') });
    expect(parseNonceFrame(frame.subarray(0, 5))).toBeUndefined();
    expect(() => parseNonceFrame(Buffer.from('x128 '))).toThrow(/length/);
    const message = encodeSamMessage('04', [
      ['rc', 'OK'],
      ['si', Buffer.from('x>y<')],
    ]);
    expect(message.toString('latin1')).toBe('04<rc=2>OK<si=4>x>y<');
    const parsed = parseSamMessage(Buffer.concat([message, Buffer.from('<E>')]));
    expect(parsed.type).toBe('04');
    expect(parsed.fields.get('si')).toEqual(Buffer.from('x>y<'));
    expect(() => parseSamMessage(Buffer.from('04<rc=3>OK'))).toThrow(/says 3 bytes/);
    expect(() => parseSamMessage(Buffer.from('04<rc=2>OK<rc=2>OK'))).toThrow(/twice/);
    expect(() => parseSamMessage(Buffer.from('04 rc'))).toThrow(/<tag=length>/);
  });

  it('RSA PKCS#1 v1.5 round trip (raw decryption, as Node 20 refuses the padded one)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const secret = Buffer.from('0123456789abcdef');
    expect(rsaPkcs1Decrypt(privateKey, rsaPkcs1Encrypt(publicKey, secret))).toEqual(secret);
    expect(() => rsaPkcs1Decrypt(privateKey, Buffer.alloc(127))).toThrow(CardBridgeError);
  });
});

describe('H_Sign end to end: virtual card ↔ service relay ↔ emulated SAM', () => {
  it.each<[string, VirtualNhiCardOptions]>([
    ['T=1 card', {}],
    ['T=0 card', { t0: true }],
    ['card that refuses SELECT', { selectUnsupported: true }],
  ])('%s: the 256-byte result verifies with the SAM public key', async (_label, cardOptions) => {
    const card = new VirtualNhiCard(cardOptions);
    const { service } = await serviceWith(card);
    const before = sam.signed.length;
    const signature = await service.hSign(RANDOM);
    expect(signature).toHaveLength(256);
    expect(verify('sha256', Buffer.from(RANDOM, 'ascii'), sam.publicKey, signature)).toBe(true);
    expect(verify('sha256', Buffer.from('00011234567890123457', 'ascii'), sam.publicKey, signature)).toBe(false);
    expect(sam.signed.slice(before)).toEqual([{ cardId: card.cardId, toBeSigned: RANDOM, signature }]);
    // What crossed to the card: card id, challenge, mutual authentication (00 82 11 12 20 … 10).
    const ins = card.received.map((b) => b.subarray(0, 3).toString('hex'));
    expect(ins).toEqual(expect.arrayContaining(['00ca00', '008400', '008211']));
  }, 5000);

  it('the emulated SAM listens on loopback only, on a free port', () => {
    expect(sam.host).toBe('127.0.0.1');
    expect(sam.port).toBeGreaterThan(0);
    expect(sam.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('signs again with a fresh random and a fresh session', async () => {
    const { service } = await serviceWith();
    const random = `0001${service.getRandom()}`;
    const signature = await service.hSign(random);
    expect(verify('sha256', Buffer.from(random), sam.publicKey, signature)).toBe(true);
  }, 5000);

  it('accepts a SAM that dribbles its frames byte by byte within the step time', async () => {
    sam.fault = { step: 'authenticate', kind: 'slow', byteDelayMs: 1 };
    const { service } = await serviceWith(new VirtualNhiCard(), samOptions({ stepTimeoutMs: 2000 }));
    expect(await service.hSign(RANDOM)).toHaveLength(256);
  }, 5000);

  it('runs the health check (77 → 04<rc=2>OK) on its own', async () => {
    const session = await SamSession.open(samOptions({ healthCheck: false }));
    try {
      await session.healthCheck();
      await session.healthCheck();
      expect(session.isOpen).toBe(true);
    } finally {
      session.close();
    }
  }, 5000);
});

interface Expectation {
  reason: SamFailureReason;
  code: string;
}

const FAULTS: Array<[SamFaultStep, SamFault['kind'], Expectation]> = [
  ['handshake', 'close', { reason: 'closed', code: '8300' }],
  ['handshake', 'truncate', { reason: 'closed', code: '8300' }],
  ['handshake', 'stall', { reason: 'timeout', code: '8301' }],
  ['handshake', 'slow', { reason: 'timeout', code: '8301' }],
  ['handshake', 'oversize', { reason: 'oversized', code: '8302' }],
  ['handshake', 'extra', { reason: 'framing', code: '8302' }],
  ['handshake', 'garbage', { reason: 'decrypt', code: '8303' }],
  ['handshake', 'reject', { reason: 'server-key', code: '8304' }],
  ['handshake', 'wrong-length', { reason: 'server-nonce', code: '8305' }],
  ['handshake', 'unexpected', { reason: 'server-nonce', code: '8305' }],
  ['health', 'close', { reason: 'closed', code: '8306' }],
  ['health', 'stall', { reason: 'timeout', code: '8306' }],
  ['health', 'garbage', { reason: 'decrypt', code: '8306' }],
  ['health', 'reject', { reason: 'rejected', code: '8306' }],
  ['health', 'wrong-length', { reason: 'malformed', code: '8306' }],
  ['health', 'unexpected', { reason: 'malformed', code: '8306' }],
  ['authenticate', 'close', { reason: 'closed', code: '8003' }],
  ['authenticate', 'truncate', { reason: 'closed', code: '8003' }],
  ['authenticate', 'stall', { reason: 'timeout', code: '8004' }],
  ['authenticate', 'slow', { reason: 'timeout', code: '8004' }],
  ['authenticate', 'oversize', { reason: 'oversized', code: '8005' }],
  ['authenticate', 'extra', { reason: 'framing', code: '8005' }],
  ['authenticate', 'garbage', { reason: 'decrypt', code: '8005' }],
  ['authenticate', 'wrong-length', { reason: 'malformed', code: '8007' }],
  ['authenticate', 'unexpected', { reason: 'malformed', code: '8007' }],
  ['authenticate', 'reject', { reason: 'rejected', code: '8007' }],
  ['sign', 'close', { reason: 'closed', code: '8003' }],
  ['sign', 'truncate', { reason: 'closed', code: '8003' }],
  ['sign', 'stall', { reason: 'timeout', code: '8004' }],
  ['sign', 'slow', { reason: 'timeout', code: '8004' }],
  ['sign', 'oversize', { reason: 'oversized', code: '8005' }],
  ['sign', 'extra', { reason: 'framing', code: '8005' }],
  ['sign', 'garbage', { reason: 'decrypt', code: '8005' }],
  ['sign', 'unexpected', { reason: 'malformed', code: '8007' }],
  ['sign', 'wrong-length', { reason: 'signature-length', code: '8008' }],
  ['sign', 'reject', { reason: 'rejected', code: '8006' }],
];

function faultOf(step: SamFaultStep, kind: SamFault['kind']): SamFault {
  if (kind === 'slow') return { step, kind, byteDelayMs: 40 };
  if (kind === 'oversize') return { step, kind, bytes: 2000 };
  return { step, kind } as SamFault;
}

describe('SAM failures: each a distinct error with its official code, none hangs', () => {
  it.each(FAULTS)('%s / %s → %o', async (step, kind, expected) => {
    sam.fault = faultOf(step, kind);
    const card = new VirtualNhiCard();
    const { service } = await serviceWith(card);
    const started = Date.now();
    const error = await caught<SamClientError>(service.hSign(RANDOM));
    expect(error).toBeInstanceOf(SamClientError);
    expect(error.code).toBe('SamError');
    expect(error.step).toBe(step);
    expect(error.reason).toBe(expected.reason);
    expect(error.stage).toBe(`sam-${step}`);
    expect(nhiErrorCode(error, 'H_Sign')).toBe(expected.code);
    expect(Date.now() - started).toBeLessThan(2000);
    // A failure before the card steps never touched the card.
    if (step === 'handshake' || step === 'health') expect(card.received).toHaveLength(1); // recognition's SELECT only
  }, 5000);
});

describe('SAM unreachable → 4061', () => {
  it('connection refused', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const { service } = await serviceWith(new VirtualNhiCard(), samOptions({ port }));
    const error = await caught<SamClientError>(service.hSign(RANDOM));
    expect(error).toMatchObject({ code: 'SamUnavailable', step: 'connect', reason: 'refused' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('4061');
  }, 5000);

  it('a connection that never completes is cut at connectTimeoutMs', async () => {
    const started = Date.now();
    let made: Socket | undefined;
    // A socket that is never connected never emits 'connect': a SYN lost in the network.
    const createSocket = () => (made = new Socket());
    const error = await caught<SamClientError>(SamSession.open({ host: 'sam.example', port: 443, connectTimeoutMs: 150, createSocket }));
    expect(error).toMatchObject({ code: 'SamUnavailable', step: 'connect', reason: 'timeout' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('4061');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(made?.destroyed).toBe(true);
  }, 5000);

  it('unknown host name', async () => {
    const error = await caught<SamClientError>(SamSession.open({ host: 'sam.invalid', port: 443, connectTimeoutMs: 1000 }));
    expect(error).toMatchObject({ code: 'SamUnavailable', step: 'connect' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('4061');
  }, 5000);
});

describe('hand-written misbehaving servers', () => {
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
  });

  async function listen(onConnection: (socket: Socket) => void): Promise<number> {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      onConnection(socket);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('a server that closes at once → 8300', async () => {
    const port = await listen((socket) => socket.destroy());
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'handshake', reason: 'closed' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8300');
  }, 5000);

  it('a server that answers plain text ending in <E> → 8302 at once, not at the deadline', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n<E>')));
    const started = Date.now();
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'handshake', reason: 'framing' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8302');
    expect(Date.now() - started).toBeLessThan(300);
  }, 5000);

  it('a server that answers whole blocks of plain text → 8303 (does not decrypt)', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n....<E>')));
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'handshake', reason: 'decrypt' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8303');
  }, 5000);

  it('a server that streams forever without <E> is cut at maxFrameBytes → 8302', async () => {
    const port = await listen((socket) => {
      socket.once('data', () => {
        const pump = () => {
          if (!socket.destroyed) socket.write(Buffer.alloc(512, 0x20), () => setImmediate(pump));
        };
        pump();
      });
    });
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port, maxFrameBytes: 4096 })));
    expect(error).toMatchObject({ step: 'handshake', reason: 'oversized' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8302');
  }, 5000);

  it('a server whose hello carries a key that is not RSA → 8304', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const port = await listen((socket) => {
      socket.once('data', (hello) => {
        const plain = decryptFrameBody(SAM_L_KEY, hello.subarray(0, hello.length - 3));
        const clientKey = createPublicKey(plain.subarray(6).toString());
        socket.write(encryptFrame(SAM_L_KEY, encodeServerHello(pem, rsaPkcs1Encrypt(clientKey, Buffer.alloc(16, 1)))));
      });
    });
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'handshake', reason: 'server-key' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8304');
  }, 5000);

  it('a session closed by the server between steps → 8003 on the next request', async () => {
    const session = await SamSession.open(samOptions());
    try {
      // The emulated SAM drops the connection when the health check arrives.
      sam.fault = { step: 'health', kind: 'close' };
      const first = await caught<SamClientError>(session.healthCheck());
      expect(first).toMatchObject({ step: 'health', reason: 'closed' });
      const next = await caught<SamClientError>(session.authenticateCard(Buffer.alloc(12, 0x30), Buffer.alloc(8)));
      expect(next).toMatchObject({ step: 'authenticate' });
      expect(nhiErrorCode(next, 'H_Sign')).toBe('8003');
      expect(session.isOpen).toBe(false);
    } finally {
      session.close();
    }
  }, 5000);
});

describe('card-side failures during H_Sign', () => {
  it('card id read refused → 8001', async () => {
    // Only after insertion, so that recognition is not affected.
    let armed = false;
    const gated = failingCard(new VirtualNhiCard(), (c) => (armed && c[1] === 0xca && c[2] === 0x00 ? 0x6f00 : undefined));
    const { service } = await serviceWith(gated);
    armed = true;
    const error = await caught<CardBridgeError>(service.hSign(RANDOM));
    expect(error).toMatchObject({ code: 'CardError', stage: 'card-id' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8001');
  }, 5000);

  it('GET CHALLENGE refused → 8002', async () => {
    const { service } = await serviceWith(failingCard(new VirtualNhiCard(), (c) => (c[1] === 0x84 ? 0x6a81 : undefined)));
    const error = await caught<CardBridgeError>(service.hSign(RANDOM));
    expect(error).toMatchObject({ code: 'CardError', stage: 'challenge' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8002');
  }, 5000);

  it('a card whose key the SAM does not know refuses the SAM data → 8006', async () => {
    const stranger = new VirtualNhiCard({ authKey: nhiTestCardKey(Buffer.from('000000000000'), Buffer.from('another master')) });
    const { service } = await serviceWith(stranger);
    const error = await caught<CardBridgeError>(service.hSign(RANDOM));
    expect(error).toMatchObject({ code: 'CardError', stage: 'mutual-auth', sw: 0x6300 });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8006');
  }, 5000);

  it('a card answer the SAM cannot verify → 8006', async () => {
    // The card's reply is corrupted on its way back: the SAM refuses message 03.
    const inner = new VirtualNhiCard();
    const corrupting: VirtualCard = {
      atr: inner.atr,
      process: (c) => {
        const answer = inner.process(c);
        if (c[1] === 0x82 && answer.length === 18) answer[0] = answer[0]! ^ 0xff;
        return answer;
      },
    };
    const { service } = await serviceWith(corrupting);
    const error = await caught<SamClientError>(service.hSign(RANDOM));
    expect(error).toMatchObject({ code: 'SamError', step: 'sign', reason: 'rejected' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8006');
  }, 5000);

  it('no card → 7004, and the SAM session is closed', async () => {
    const registry = new MockReaderRegistry();
    registry.addReader(READER);
    const service = new NhiService(registry, { sam: samOptions() });
    const error = await caught<CardBridgeError>(service.hSign(RANDOM));
    expect(error.code).toBe('NoCard');
    expect(nhiErrorCode(error, 'H_Sign')).toBe('7004');
  }, 5000);

  it.each([1, 2, 3, 4])('card removed at APDU %i of the relay → 7004', async (nth) => {
    const registry = new MockReaderRegistry();
    registry.addReader(READER);
    const card = new SelfRemovingCard(new VirtualNhiCard(), registry, READER);
    await registry.insertCard(READER, card);
    card.arm(nth);
    const error = await caught<CardBridgeError>(new NhiService(registry, { sam: samOptions() }).hSign(RANDOM));
    expect(error.code).toBe('CardRemoved');
    expect(nhiErrorCode(error, 'H_Sign')).toBe('7004');
  }, 5000);
});
