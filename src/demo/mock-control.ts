import { CardBridgeError } from '../errors.js';
import { type MoicaTestPki, getTestPki } from '../emulator/moica/test-pki.js';
import { VirtualMoicaGen1Card } from '../emulator/moica/virtual-moica-gen1.js';
import { VirtualMoicaGen2Card } from '../emulator/moica/virtual-moica-gen2.js';
import { VirtualNhiCard } from '../emulator/nhi/virtual-nhi-card.js';
import type { VirtualCard } from '../emulator/virtual-card.js';
import type { MockReaderRegistry } from '../readers/mock-registry.js';

export const DEMO_CARD_KINDS = ['nhi', 'moica-gen1', 'moica-gen2'] as const;
export type DemoCardKind = (typeof DEMO_CARD_KINDS)[number];

/** PIN of the demo's virtual MOICA cards. */
export const DEMO_MOICA_PIN = '123456';

/** The PKI behind the virtual MOICA cards: the process-wide one unless a --pki directory gives another. */
export type TestPkiSource = () => Promise<MoicaTestPki>;

export async function createVirtualCard(kind: DemoCardKind, pki: TestPkiSource = getTestPki): Promise<VirtualCard> {
  switch (kind) {
    case 'nhi':
      return new VirtualNhiCard();
    case 'moica-gen1':
      return new VirtualMoicaGen1Card(await pki(), { pin: DEMO_MOICA_PIN });
    case 'moica-gen2':
      return new VirtualMoicaGen2Card(await pki(), { pin: DEMO_MOICA_PIN });
  }
}

/** What GET /v1/mock/pki answers: the public half of the test PKI, for a back end to trust. */
export interface MockPkiView {
  caBundlePem: string;
  root: string;
  issuing: string;
  holder: MoicaTestPki['holder'];
}

export interface MockReaderView {
  name: string;
  card: DemoCardKind | null;
  /** MOICA cards: PIN tries left. */
  triesLeft?: number;
}

/**
 * What the demo's control panel and relying-site developers' tests can do to the mock readers:
 * insert and remove virtual cards, add and remove readers, give a MOICA card its PIN tries back.
 * Exists only in mock mode.
 */
export class MockControl {
  private readonly kinds = new Map<string, DemoCardKind>();

  constructor(
    private readonly registry: MockReaderRegistry,
    private readonly testPki: TestPkiSource = getTestPki,
  ) {}

  /** The CA chain the virtual MOICA cards' certificates chain to (never a private key). */
  async pki(): Promise<MockPkiView> {
    const pki = await this.testPki();
    return { caBundlePem: pki.caBundlePem, root: pki.root.pem, issuing: pki.issuing.pem, holder: pki.holder };
  }

  /** Records what the demo inserted at start. */
  track(reader: string, kind: DemoCardKind): void {
    this.kinds.set(reader, kind);
  }

  state(): { readers: MockReaderView[]; cardKinds: readonly DemoCardKind[]; moicaPin: string } {
    const readers = this.registry.readers().map((r) => {
      const kind = r.card ? (this.kinds.get(r.name) ?? null) : null;
      const card = this.registry.cardIn(r.name) as { triesLeft?: unknown } | undefined;
      const view: MockReaderView = { name: r.name, card: kind };
      if (kind?.startsWith('moica') && typeof card?.triesLeft === 'number') view.triesLeft = card.triesLeft;
      return view;
    });
    return { readers, cardKinds: DEMO_CARD_KINDS, moicaPin: DEMO_MOICA_PIN };
  }

  private requireReader(reader: string): void {
    if (!this.registry.readers().some((r) => r.name === reader)) throw new CardBridgeError('NoReader', `No mock reader named "${reader}"`);
  }

  async insert(reader: string, kind: DemoCardKind): Promise<void> {
    this.requireReader(reader);
    await this.registry.insertCard(reader, await createVirtualCard(kind, this.testPki));
    this.kinds.set(reader, kind);
  }

  remove(reader: string): void {
    this.requireReader(reader);
    this.registry.removeCard(reader);
    this.kinds.delete(reader);
  }

  addReader(name: string): void {
    if (this.registry.readers().some((r) => r.name === name)) throw new CardBridgeError('InvalidInput', `A reader named "${name}" already exists`);
    this.registry.addReader(name);
  }

  removeReader(name: string): void {
    this.requireReader(name);
    this.registry.removeReader(name);
    this.kinds.delete(name);
  }

  /** A fresh card of the same kind: the PIN counter is back to full, the certificates the same. */
  async resetPin(reader: string): Promise<void> {
    const kind = this.kinds.get(reader);
    if (!kind?.startsWith('moica')) throw new CardBridgeError('WrongCard', `There is no virtual MOICA card in "${reader}"`);
    await this.insert(reader, kind);
  }
}
