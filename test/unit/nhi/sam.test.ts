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
import { SamClientError, type SamClientOptions, type SamFailureReason, SamSession, type SamStep, checkSamHealth } from '../../../src/remote/nhi-sam/sam-client.js';
import { SAM_L_KEY, encodeServerHello, openFrameBody, parseClientHello, rsaPkcs1Encrypt, sealFrame } from '../../../src/remote/nhi-sam/sam-protocol.js';
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

  it('sends nothing but 01 and 03 on the signing connection: the strict SAM refuses nobody', async () => {
    const refusals = sam.refusals;
    const { service } = await serviceWith();
    expect(await service.hSign(RANDOM)).toHaveLength(256);
    expect(sam.refusals).toBe(refusals);
  }, 5000);

  it.each<[string, Buffer, Buffer]>([
    ['" 128 " between, nothing after', Buffer.from(' 128 '), Buffer.alloc(0)],
    ['NULs between, 100 bytes after', Buffer.alloc(5), Buffer.alloc(100, 0x3e)],
    ['"<E>" bytes between and after', Buffer.from('<E><E'), Buffer.from('<E>')],
  ])('reads the server hello at its fixed offsets whatever surrounds the nonce: %s', async (_label, between, after) => {
    const other = await EmulatedSam.start({ helloBetween: between, helloAfter: after });
    try {
      const { service } = await serviceWith(new VirtualNhiCard(), samOptions({ port: other.port }));
      const signature = await service.hSign(RANDOM);
      expect(verify('sha256', Buffer.from(RANDOM), other.publicKey, signature)).toBe(true);
    } finally {
      await other.close();
    }
  }, 5000);
});

describe('the health check: a diagnostic on a connection of its own', () => {
  it('plain 77<E> → 04<rc=2>OK<E> is healthy', async () => {
    const refusals = sam.refusals;
    const health = await checkSamHealth(samOptions());
    expect(health.ok).toBe(true);
    expect(health.answer).toBeUndefined();
    expect(sam.refusals).toBe(refusals);
  }, 5000);

  it.each<[SamFault['kind'], string]>([
    ['reject', '04<rc=2>NG<E>'],
    ['wrong-length', '04<rc=3>OKK<E>'],
    ['unexpected', '02<E>'],
  ])('any other answer is unhealthy and shown (%s)', async (kind, answer) => {
    sam.fault = { step: 'health', kind } as SamFault;
    expect(await checkSamHealth(samOptions())).toMatchObject({ ok: false, answer });
  }, 5000);

  it.each<[SamFault['kind'], SamFailureReason]>([
    ['close', 'closed'],
    ['stall', 'timeout'],
  ])('a SAM that does not answer (%s) fails the check with step health', async (kind, reason) => {
    sam.fault = { step: 'health', kind } as SamFault;
    const error = await caught<SamClientError>(checkSamHealth(samOptions()));
    expect(error).toMatchObject({ step: 'health', reason });
  }, 5000);

  it('an unreachable SAM fails the check as 4061 would', async () => {
    const error = await caught<SamClientError>(checkSamHealth(samOptions({ port: await closedPort() })));
    expect(error).toMatchObject({ code: 'SamUnavailable', step: 'connect', reason: 'refused' });
  }, 5000);
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Expectation {
  failedStep: SamStep;
  reason: SamFailureReason;
  code: string;
}

/** Each fault of the emulated SAM → the client's step and reason → the peer's number (specs/nhi-card.md). */
const FAULTS: Array<[SamFaultStep, SamFault['kind'], Expectation]> = [
  ['handshake', 'close', { failedStep: 'hello-receive', reason: 'closed', code: '8305' }],
  ['handshake', 'truncate', { failedStep: 'hello-receive', reason: 'closed', code: '8305' }],
  ['handshake', 'stall', { failedStep: 'hello-receive', reason: 'timeout', code: '8305' }],
  ['handshake', 'slow', { failedStep: 'hello-receive', reason: 'timeout', code: '8305' }],
  ['handshake', 'oversize', { failedStep: 'hello-receive', reason: 'oversized', code: '8305' }],
  ['handshake', 'extra', { failedStep: 'hello-receive', reason: 'framing', code: '8305' }],
  ['handshake', 'garbage', { failedStep: 'hello-receive', reason: 'decrypt', code: '8305' }],
  ['handshake', 'wrong-length', { failedStep: 'hello-receive', reason: 'server-nonce', code: '8305' }],
  ['handshake', 'unexpected', { failedStep: 'hello-receive', reason: 'server-nonce', code: '8305' }],
  ['handshake', 'reject', { failedStep: 'nonce-encrypt', reason: 'server-key', code: '8303' }],
  ['authenticate', 'close', { failedStep: 'auth-receive', reason: 'closed', code: '8005' }],
  ['authenticate', 'truncate', { failedStep: 'auth-receive', reason: 'closed', code: '8005' }],
  ['authenticate', 'stall', { failedStep: 'auth-receive', reason: 'timeout', code: '8005' }],
  ['authenticate', 'slow', { failedStep: 'auth-receive', reason: 'timeout', code: '8005' }],
  ['authenticate', 'oversize', { failedStep: 'auth-receive', reason: 'oversized', code: '8005' }],
  ['authenticate', 'extra', { failedStep: 'auth-receive', reason: 'framing', code: '8005' }],
  ['authenticate', 'garbage', { failedStep: 'auth-receive', reason: 'decrypt', code: '8005' }],
  ['authenticate', 'wrong-length', { failedStep: 'auth-receive', reason: 'malformed', code: '8005' }],
  ['authenticate', 'unexpected', { failedStep: 'auth-receive', reason: 'malformed', code: '8005' }],
  ['authenticate', 'reject', { failedStep: 'auth-receive', reason: 'malformed', code: '8005' }],
  ['authenticate', 'old-framing', { failedStep: 'auth-receive', reason: 'malformed', code: '8005' }],
  ['sign', 'close', { failedStep: 'sign-receive', reason: 'closed', code: '8008' }],
  ['sign', 'truncate', { failedStep: 'sign-receive', reason: 'closed', code: '8008' }],
  ['sign', 'stall', { failedStep: 'sign-receive', reason: 'timeout', code: '8008' }],
  ['sign', 'slow', { failedStep: 'sign-receive', reason: 'timeout', code: '8008' }],
  ['sign', 'oversize', { failedStep: 'sign-receive', reason: 'oversized', code: '8008' }],
  ['sign', 'extra', { failedStep: 'sign-receive', reason: 'framing', code: '8008' }],
  ['sign', 'garbage', { failedStep: 'sign-receive', reason: 'decrypt', code: '8008' }],
  ['sign', 'unexpected', { failedStep: 'sign-receive', reason: 'malformed', code: '8008' }],
  ['sign', 'wrong-length', { failedStep: 'sign-receive', reason: 'malformed', code: '8008' }],
  ['sign', 'old-framing', { failedStep: 'sign-receive', reason: 'malformed', code: '8008' }],
  ['sign', 'reject', { failedStep: 'sign-receive', reason: 'rejected', code: '8006' }],
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
    expect(error.step).toBe(expected.failedStep);
    expect(error.reason).toBe(expected.reason);
    expect(error.stage).toBe(`sam-${expected.failedStep}`);
    expect(nhiErrorCode(error, 'H_Sign')).toBe(expected.code);
    expect(Date.now() - started).toBeLessThan(2000);
    // A failure before the card steps never touched the card.
    if (step === 'handshake') expect(card.received).toHaveLength(1); // recognition's SELECT only
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

  it('a server that hangs up on the hello → 8305', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.destroy()));
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'hello-receive', reason: 'closed' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8305');
  }, 5000);

  it('a server that answers plain text ending in <E> → 8305 at once, not at the deadline', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n<E>')));
    const started = Date.now();
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'hello-receive', reason: 'framing' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8305');
    expect(Date.now() - started).toBeLessThan(300);
  }, 5000);

  it('a server that answers whole blocks of plain text → 8305 (does not decrypt)', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n....<E>')));
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'hello-receive', reason: 'decrypt' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8305');
  }, 5000);

  it('a server that streams forever without <E> is cut at maxFrameBytes → 8305', async () => {
    const port = await listen((socket) => {
      socket.once('data', () => {
        const pump = () => {
          if (!socket.destroyed) socket.write(Buffer.alloc(512, 0x20), () => setImmediate(pump));
        };
        pump();
      });
    });
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port, maxFrameBytes: 4096 })));
    expect(error).toMatchObject({ step: 'hello-receive', reason: 'oversized' });
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8305');
  }, 5000);

  it('a server whose hello carries a key that is not RSA → 8303 (encrypting the nonce to it)', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    // Padded with newlines to the 0x110 bytes the fixed offsets give the PEM.
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString().padEnd(0x110, '\n');
    const port = await listen((socket) => {
      socket.once('data', (hello) => {
        const clientPem = parseClientHello(openFrameBody(SAM_L_KEY, hello.subarray(0, hello.length - 3)));
        const nonce = rsaPkcs1Encrypt(createPublicKey(clientPem), Buffer.alloc(16, 1));
        socket.write(sealFrame(SAM_L_KEY, encodeServerHello(pem, Buffer.from(' 128 '), nonce)));
      });
    });
    const error = await caught<SamClientError>(SamSession.open(samOptions({ port })));
    expect(error).toMatchObject({ step: 'nonce-encrypt', reason: 'server-key' });
    expect(error.message).toContain('ec key');
    expect(nhiErrorCode(error, 'H_Sign')).toBe('8303');
  }, 5000);

  it('a session closed by the server at 01 → 8005, then the 03 → 8007 without touching the network', async () => {
    const session = await SamSession.open(samOptions());
    try {
      sam.fault = { step: 'authenticate', kind: 'close' };
      const first = await caught<SamClientError>(session.authenticateCard(Buffer.alloc(12, 0x30), Buffer.alloc(8)));
      expect(first).toMatchObject({ step: 'auth-receive', reason: 'closed' });
      expect(nhiErrorCode(first, 'H_Sign')).toBe('8005');
      const next = await caught<SamClientError>(session.sign(Buffer.alloc(16), RANDOM));
      expect(next).toMatchObject({ step: 'sign-send', reason: 'closed' });
      expect(nhiErrorCode(next, 'H_Sign')).toBe('8007');
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
    expect(error).toMatchObject({ code: 'SamError', step: 'sign-receive', reason: 'rejected' });
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
