import { randomBytes } from 'node:crypto';
import iconv from 'iconv-lite';
import { CardBridgeError } from '../../errors.js';
import { type CommandApdu, decodeCommand, encodeResponse } from '../../pcsc/apdu.js';
import { NHI_BASIC_LAYOUT, isoDateToRoc, type NhiSex } from '../../cards/nhi/basic-data.js';
import {
  NHI_APPLET_AID,
  NHI_BASIC_DATA_LENGTH,
  NHI_CARD_ID_LENGTH,
  NHI_CHALLENGE_LENGTH,
  NHI_SAM_APPLET_AID,
  NHI_SAM_AUTH_DATA_LENGTH,
} from '../../cards/nhi/commands.js';
import type { VirtualCard } from '../virtual-card.js';
import { T0ResponseChain } from '../t0-chain.js';
import { nhiTestCardKey, nhiTestCardReply } from './test-auth.js';

/** A made-up identity for a virtual card. Every fixture below is obviously fake. */
export interface NhiTestIdentity {
  /** 12 digits. */
  cardNumber: string;
  /** Encoded as Big5-HKSCS; or raw bytes (≤ 20) to put undecodable sequences on the card. */
  name: string | Buffer;
  idNumber: string;
  /** ISO `yyyy-mm-dd`; stored as ROC `YYYMMDD`. */
  birthDate: string;
  sex: NhiSex;
  issueDate: string;
}

/** 王小明, the default test citizen. */
export const NHI_TEST_IDENTITY: NhiTestIdentity = {
  cardNumber: '000011112222',
  name: '王小明',
  idNumber: 'A123456789',
  birthDate: '1985-03-15',
  sex: 'M',
  issueDate: '2015-06-01',
};

/** A name with HKSCS-only characters: 𨭆 (Big5-HKSCS 9D53, outside the BMP) and 邨 (9068). */
export const NHI_TEST_IDENTITY_HKSCS: NhiTestIdentity = {
  cardNumber: '000033334444',
  name: '陳𨭆邨',
  idNumber: 'B223456789',
  birthDate: '1999-12-31',
  sex: 'F',
  issueDate: '2020-02-29',
};

/**
 * A name with a user-defined-area character that no table decodes: 林 ‖ `81 40` ‖ 華, padded
 * with spaces instead of zeros (both occur on cards).
 */
export const NHI_TEST_IDENTITY_UNDECODABLE: NhiTestIdentity = {
  cardNumber: '000055556666',
  name: Buffer.concat([iconv.encode('林', 'big5hkscs'), Buffer.from([0x81, 0x40]), iconv.encode('華', 'big5hkscs'), Buffer.from('  ')]),
  idNumber: 'C123456780',
  birthDate: '1950-01-01',
  sex: 'M',
  issueDate: '2008-10-10',
};

/** A foreign resident (new-style resident certificate number, ASCII name). */
export const NHI_TEST_IDENTITY_RESIDENT: NhiTestIdentity = {
  cardNumber: '000077778888',
  name: 'TEST JOHN DOE',
  idNumber: 'A800000014',
  birthDate: '1990-07-04',
  sex: 'M',
  issueDate: '2023-01-15',
};

export interface VirtualNhiCardOptions {
  identity?: NhiTestIdentity;
  /** Replaces the whole 57-byte record, e.g. with garbage for parser tests. */
  basicDataOverride?: Buffer;
  /** The 12-byte card id (default: the card number in ASCII). */
  cardId?: Buffer;
  /** The first character of the card status data, reported as "card_termination" (default '0'). */
  terminationFlag?: string;
  /** Per-card test secret for mutual authentication (default: derived from the test master secret). */
  authKey?: Buffer;
  /** Answer like a T=0 card: `61 xx` then GET RESPONSE for data, `6C xx` for a wrong Le. */
  t0?: boolean;
  /** The 2025+ quirk: answer every SELECT with `6D 00` while GET DATA still works. */
  selectUnsupported?: boolean;
  /** A medical-staff card: the basic-data read answers `6A 86`. */
  staffCard?: boolean;
  /** Source of the card's challenges (tests pass a deterministic one). */
  random?: (length: number) => Buffer;
  atr?: Buffer;
}

/** An ATR of our own: T=0/T=1, historical bytes "NHITEST1", TCK computed. */
function makeAtr(): Buffer {
  const body = Buffer.concat([Buffer.from([0x3b, 0x88, 0x80, 0x01]), Buffer.from('NHITEST1', 'ascii')]);
  let tck = 0;
  for (const b of body.subarray(1)) tck ^= b;
  return Buffer.concat([body, Buffer.from([tck])]);
}

export const VIRTUAL_NHI_ATR = makeAtr();

function reply(data: Buffer, sw: number): Buffer {
  return encodeResponse({ data, sw });
}

function fail(message: string): CardBridgeError {
  return new CardBridgeError('InvalidInput', `Virtual NHI card: ${message}`);
}

/** Builds the 57-byte basic data record for an identity, checking it fits the layout. */
export function encodeNhiBasicData(identity: NhiTestIdentity): Buffer {
  const record = Buffer.alloc(NHI_BASIC_DATA_LENGTH, 0);
  const put = (name: keyof typeof NHI_BASIC_LAYOUT, bytes: Buffer) => {
    const { offset, length } = NHI_BASIC_LAYOUT[name];
    if (bytes.length > length) throw fail(`${name} is ${bytes.length} bytes, the card has room for ${length}`);
    bytes.copy(record, offset);
  };
  if (!/^\d{12}$/.test(identity.cardNumber)) throw fail('card number must be 12 digits');
  put('cardNumber', Buffer.from(identity.cardNumber, 'ascii'));
  let name: Buffer;
  if (typeof identity.name === 'string') {
    name = iconv.encode(identity.name, 'big5hkscs');
    if (iconv.decode(name, 'big5hkscs') !== identity.name) throw fail(`"${identity.name}" cannot be written in Big5-HKSCS`);
  } else {
    name = identity.name;
  }
  put('name', name);
  put('idNumber', Buffer.from(identity.idNumber.padEnd(10, ' '), 'ascii'));
  const birth = isoDateToRoc(identity.birthDate);
  const issue = isoDateToRoc(identity.issueDate);
  if (!birth || !issue) throw fail('dates must be ISO yyyy-mm-dd from 1912 on');
  put('birthDate', Buffer.from(birth, 'ascii'));
  put('sex', Buffer.from(identity.sex, 'ascii'));
  put('issueDate', Buffer.from(issue, 'ascii'));
  return record;
}

/**
 * A virtual NHI health insurance card for tests and the demo (never a real identity).
 *
 * It answers what the bridge sends a real card: SELECT of the main (and SAM) applet, GET DATA
 * of the basic data / card id / card status, GET CHALLENGE and the mutual authentication with
 * a SAM, keyed by the test-only scheme in `test-auth.ts`. Options switch on the quirks seen in
 * the field (T=0 chaining, `6D 00` to SELECT, medical-staff cards).
 */
export class VirtualNhiCard implements VirtualCard {
  readonly atr: Buffer;
  readonly cardId: Buffer;
  /** Every APDU received, for tests that prove what crossed the wire. */
  readonly received: Buffer[] = [];
  resets = 0;
  private readonly basicData: Buffer;
  private readonly statusData: Buffer;
  private readonly authKey: Buffer;
  private readonly options: VirtualNhiCardOptions;
  private readonly random: (length: number) => Buffer;
  private challenge: Buffer | undefined;
  private readonly chain = new T0ResponseChain();

  constructor(options: VirtualNhiCardOptions = {}) {
    this.options = options;
    const identity = options.identity ?? NHI_TEST_IDENTITY;
    this.atr = options.atr ?? VIRTUAL_NHI_ATR;
    this.basicData = options.basicDataOverride ?? encodeNhiBasicData(identity);
    this.cardId = options.cardId ?? Buffer.from(identity.cardNumber, 'ascii');
    if (this.cardId.length !== NHI_CARD_ID_LENGTH) throw fail(`card id must be ${NHI_CARD_ID_LENGTH} bytes`);
    const flag = options.terminationFlag ?? '0';
    if (!/^[\x20-\x7e]$/.test(flag)) throw fail('termination flag must be one printable ASCII character');
    // Only the first character is documented; the rest of the record is filler of our own.
    this.statusData = Buffer.from(`${flag}0000000`, 'ascii');
    this.authKey = options.authKey ?? nhiTestCardKey(this.cardId);
    this.random = options.random ?? randomBytes;
  }

  reset(): void {
    this.resets++;
    this.challenge = undefined;
    this.chain.clear();
  }

  process(raw: Buffer): Buffer {
    this.received.push(Buffer.from(raw));
    let command: CommandApdu;
    try {
      command = decodeCommand(raw);
    } catch {
      return reply(Buffer.alloc(0), 0x6700);
    }
    if (command.cla !== 0x00) return reply(Buffer.alloc(0), 0x6e00);
    if (command.ins === 0xc0) return this.chain.getResponse(command.le);
    this.chain.clear();
    switch (command.ins) {
      case 0xa4:
        return this.select(command);
      case 0xca:
        return this.getData(command);
      case 0x84:
        return this.getChallenge(command);
      case 0x82:
        return this.mutualAuthenticate(command);
      default:
        return reply(Buffer.alloc(0), 0x6d00);
    }
  }

  private select(command: CommandApdu): Buffer {
    if (this.options.selectUnsupported) return reply(Buffer.alloc(0), 0x6d00);
    if (command.p1 !== 0x04) return reply(Buffer.alloc(0), 0x6a86);
    const aid = command.data ? Buffer.from(command.data) : Buffer.alloc(0);
    const known = aid.equals(NHI_APPLET_AID) || aid.equals(NHI_SAM_APPLET_AID);
    return reply(Buffer.alloc(0), known ? 0x9000 : 0x6a82);
  }

  private getData(command: CommandApdu): Buffer {
    if (command.p2 !== 0x00) return reply(Buffer.alloc(0), 0x6a86);
    switch (command.p1) {
      case 0x11:
        if (this.options.staffCard) return reply(Buffer.alloc(0), 0x6a86);
        return this.answer(command, this.basicData);
      case 0x00:
        return this.answer(command, this.cardId);
      case 0x24:
        return this.answer(command, this.statusData);
      default:
        return reply(Buffer.alloc(0), 0x6a88);
    }
  }

  private getChallenge(command: CommandApdu): Buffer {
    if (command.data) return reply(Buffer.alloc(0), 0x6700);
    if (command.le !== NHI_CHALLENGE_LENGTH) {
      return reply(Buffer.alloc(0), this.options.t0 ? 0x6c00 | NHI_CHALLENGE_LENGTH : 0x6700);
    }
    this.challenge = Buffer.from(this.random(NHI_CHALLENGE_LENGTH));
    return reply(this.challenge, 0x9000);
  }

  private mutualAuthenticate(command: CommandApdu): Buffer {
    if (command.p1 !== 0x11 || command.p2 !== 0x12) return reply(Buffer.alloc(0), 0x6a86);
    if (!command.data || command.data.length !== NHI_SAM_AUTH_DATA_LENGTH) return reply(Buffer.alloc(0), 0x6700);
    const challenge = this.challenge;
    this.challenge = undefined; // one attempt per challenge
    if (!challenge) return reply(Buffer.alloc(0), 0x6985);
    const answer = nhiTestCardReply(this.authKey, challenge, command.data);
    if (!answer) return reply(Buffer.alloc(0), 0x6300);
    return this.answer(command, answer);
  }

  /**
   * Answers with data as the transmission protocol would: T=1 returns it at once (cut to Le
   * when one was given); T=0 returns `61 xx` for GET RESPONSE, except a case-2 command with the
   * wrong Le, which gets `6C xx`.
   */
  private answer(command: CommandApdu, data: Buffer): Buffer {
    if (!this.options.t0) {
      const le = command.le;
      return reply(le === undefined || le >= data.length ? data : data.subarray(0, le), 0x9000);
    }
    if (!command.data && command.le !== undefined && command.le !== data.length) {
      return reply(Buffer.alloc(0), 0x6c00 | (data.length & 0xff));
    }
    if (!command.data) return reply(data, 0x9000);
    return this.chain.start(data);
  }
}
