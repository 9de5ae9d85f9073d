import net from 'node:net';
import { VpcdCardSlot } from '../../../src/emulator/vpcd-client.js';
import { GenericTestCard } from '../../../src/emulator/test-card.js';

/** A stand-in for vpcd's side of the socket: it sends framed messages and collects replies. */
class FakeVpcd {
  server = net.createServer();
  socket: net.Socket | undefined;
  private received = Buffer.alloc(0);
  private waiting: ((frame: Buffer) => void)[] = [];
  connections = 0;

  async listen(): Promise<number> {
    this.server.on('connection', (s) => {
      this.connections++;
      this.socket = s;
      s.on('data', (d) => {
        this.received = Buffer.concat([this.received, d]);
        this.drain();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  private drain(): void {
    while (this.received.length >= 2 && this.received.length >= 2 + this.received.readUInt16BE(0)) {
      const n = this.received.readUInt16BE(0);
      const frame = this.received.subarray(2, 2 + n);
      this.received = this.received.subarray(2 + n);
      this.waiting.shift()?.(Buffer.from(frame));
    }
  }

  /** Sends one framed message, optionally split into single-byte writes as TCP may deliver it. */
  request(body: Buffer, split = false): Promise<Buffer> {
    const frame = Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);
    const reply = new Promise<Buffer>((resolve) => this.waiting.push(resolve));
    if (split) for (const byte of frame) this.socket!.write(Buffer.from([byte]));
    else this.socket!.write(frame);
    return reply;
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not reached');
}

describe('vpcd client', () => {
  let vpcd: FakeVpcd;
  let port: number;
  beforeEach(async () => {
    vpcd = new FakeVpcd();
    port = await vpcd.listen();
  });
  afterEach(() => vpcd.close());

  it('answers ATR requests and APDUs with vpcd framing, and resets on control 2', async () => {
    const card = new GenericTestCard({ dataObject: Buffer.from('hello') });
    const slot = new VpcdCardSlot(card, { port });
    await slot.insert();
    await until(() => vpcd.socket !== undefined);
    expect(await vpcd.request(Buffer.from([4]))).toEqual(card.atr);
    expect(await vpcd.request(Buffer.from('00CA000005', 'hex'))).toEqual(Buffer.from('hello\x90\x00', 'binary'));
    // split delivery still forms one message
    expect(await vpcd.request(Buffer.from('00CA000002', 'hex'), true)).toEqual(Buffer.from('he\x90\x00', 'binary'));
    vpcd.socket!.write(Buffer.from([0, 1, 2]));
    await until(() => card.resets === 1);
    await slot.remove();
  });

  it('keeps answers in order when the card answers asynchronously', async () => {
    let n = 0;
    const slot = new VpcdCardSlot(
      { atr: Buffer.from('3B00', 'hex'), process: async (c) => {
        const delay = c[2] === 1 ? 30 : 0;
        await new Promise((r) => setTimeout(r, delay));
        return Buffer.from([c[2]!, ++n, 0x90, 0x00]);
      } },
      { port },
    );
    await slot.insert();
    await until(() => vpcd.socket !== undefined);
    const [first, second] = await Promise.all([vpcd.request(Buffer.from('00EE0100', 'hex')), vpcd.request(Buffer.from('00EE0200', 'hex'))]);
    expect(first).toEqual(Buffer.from([1, 1, 0x90, 0]));
    expect(second).toEqual(Buffer.from([2, 2, 0x90, 0]));
    await slot.remove();
  });

  it('answers 6F 00 when the emulated card throws, instead of hanging vpcd', async () => {
    const slot = new VpcdCardSlot({ atr: Buffer.from('3B00', 'hex'), process: () => { throw new Error('bug'); } }, { port });
    await slot.insert();
    await until(() => vpcd.socket !== undefined);
    expect(await vpcd.request(Buffer.from('00A40400', 'hex'))).toEqual(Buffer.from('6F00', 'hex'));
    await slot.remove();
  });

  it('reconnects after vpcd drops the connection (pcscd restarting) until removed', async () => {
    const slot = new VpcdCardSlot(new GenericTestCard(), { port, reconnectDelayMs: 10 });
    const removed = new Promise((r) => slot.once('removed', r));
    await slot.insert();
    await until(() => vpcd.connections === 1);
    vpcd.socket!.destroy();
    await removed;
    await until(() => vpcd.connections === 2 && slot.connected);
    await slot.remove();
    expect(slot.connected).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(vpcd.connections).toBe(2);
  });

  it('insert() waits for vpcd to come up', async () => {
    await vpcd.close();
    const slot = new VpcdCardSlot(new GenericTestCard(), { port, reconnectDelayMs: 10 });
    const inserted = slot.insert();
    await new Promise((r) => setTimeout(r, 40));
    vpcd = new FakeVpcd();
    vpcd.server.listen(port, '127.0.0.1');
    vpcd.server.on('connection', (s) => (vpcd.socket = s));
    await inserted;
    expect(slot.connected).toBe(true);
    await slot.remove();
  });
});
