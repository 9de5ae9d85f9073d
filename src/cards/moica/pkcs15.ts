import * as asn1js from 'asn1js';
import { CardBridgeError } from '../../errors.js';
import { decodeNamedBits, encodeNamedBits } from '../../crypto/named-bits.js';

/**
 * The PKCS#15 directory records MOICA cards keep in DF 5030 (specs/moica-card.md §2, "Files"):
 * CDF entries (CertificateObject), PrKDF entries (PrivateKeyObject) and PuKDF entries
 * (PublicKeyObject: where the card keeps a public key, see the spec's corrections), decoded and
 * encoded with asn1js. Only the fields cardbridge uses are modelled; unknown fields are skipped.
 *
 * PKCS15Object ::= SEQUENCE { commonObjectAttributes, classAttributes,
 *                             subClassAttributes [0] OPTIONAL, typeAttributes [1] }
 * The [0]/[1] wrappers are explicit (they wrap open types), as on real cards.
 */

export interface Pkcs15Path {
  /** Concatenated FIDs, e.g. 3F00 5030 08F2 (gen 1) or 7FFF 5030 08F2 (gen 2). */
  path: Buffer;
  /** Offset into the EF. */
  index?: number;
  /** Number of bytes from `index`. */
  length?: number;
}

export interface Pkcs15CertificateObject {
  label?: string;
  /** CommonCertificateAttributes.iD: ASCII `SIGN`, `KEYX`, `CACert`, `ROOTCACert` on MOICA. */
  id: Buffer;
  authority?: boolean;
  path: Pkcs15Path;
}

/** PKCS#15 KeyUsageFlags bit numbers. */
export const PKCS15_KEY_USAGE = {
  encrypt: 0,
  decrypt: 1,
  sign: 2,
  signRecover: 3,
  wrap: 4,
  unwrap: 5,
  verify: 6,
  verifyRecover: 7,
  derive: 8,
  nonRepudiation: 9,
} as const;
export type Pkcs15KeyUsage = keyof typeof PKCS15_KEY_USAGE;

/**
 * A PrKDF or PuKDF entry. Private and public RSA key objects share this shape: common object
 * attributes, CommonKeyAttributes (iD, usage, keyReference) and [1] { Path, modulusLength }.
 */
export interface Pkcs15KeyObject {
  label?: string;
  /** PIN object the key is protected by (CommonObjectAttributes.authId). */
  authId?: Buffer;
  id: Buffer;
  usage: Pkcs15KeyUsage[];
  keyReference?: number;
  path?: Pkcs15Path;
  modulusLength?: number;
}

export type Pkcs15PrivateKeyObject = Pkcs15KeyObject;
/** A PuKDF entry: `path` is the public-key EF, `keyReference` the READ RECORD reference. */
export type Pkcs15PublicKeyObject = Pkcs15KeyObject;

/** Record bytes that start a padding run instead of another record. */
const PADDING = new Set([0x00, 0xff]);

function malformed(what: string): CardBridgeError {
  return new CardBridgeError('ProtocolError', `PKCS#15 directory: ${what}`);
}

// ——— length of one DER element, for reading records forward ———

/**
 * Total length (header + content) of the BER element at `pos` using definite lengths, or
 * `undefined` if `bytes` ends before the header does. Only reads the header.
 */
export function derElementLength(bytes: Uint8Array, pos = 0): number | undefined {
  let p = pos;
  if (p >= bytes.length) return undefined;
  if ((bytes[p]! & 0x1f) === 0x1f) {
    // high tag number: continuation bytes have bit 8 set
    do {
      p++;
      if (p >= bytes.length) return undefined;
    } while ((bytes[p]! & 0x80) !== 0);
  }
  p++;
  if (p >= bytes.length) return undefined;
  const first = bytes[p]!;
  p++;
  if (first < 0x80) return p - pos + first;
  const n = first & 0x7f;
  if (n === 0) throw malformed('indefinite lengths are not used in directory files');
  if (n > 3) throw malformed('element length out of range');
  if (p + n > bytes.length) return undefined;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + bytes[p + i]!;
  return p + n - pos + length;
}

export interface DirectoryRecords {
  records: Buffer[];
  /** True once padding (or the exact end of the data) was reached; false means "read more". */
  complete: boolean;
  /** Bytes consumed by whole records. */
  consumed: number;
}

/**
 * Splits the bytes read so far from a directory file into DER records, stopping at padding
 * (a record may not start with 00 or FF). `atEnd` says the file has no more bytes.
 */
export function splitDirectoryRecords(bytes: Uint8Array, atEnd = false): DirectoryRecords {
  const records: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (PADDING.has(bytes[pos]!)) return { records, complete: true, consumed: pos };
    const length = derElementLength(bytes, pos);
    if (length === undefined || pos + length > bytes.length) {
      if (atEnd) throw malformed('the file ends inside a record');
      return { records, complete: false, consumed: pos };
    }
    records.push(Buffer.from(bytes.subarray(pos, pos + length)));
    pos += length;
  }
  return { records, complete: atEnd, consumed: pos };
}

// ——— decoding helpers ———

function parse(der: Uint8Array): asn1js.AsnType {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) throw malformed(`unreadable record (${parsed.result.error})`);
  if (parsed.offset !== der.length) throw malformed('trailing bytes after the record');
  return parsed.result;
}

function children(node: asn1js.AsnType | undefined, what: string): asn1js.AsnType[] {
  if (!(node instanceof asn1js.Sequence) && !(node instanceof asn1js.Constructed)) throw malformed(`${what} is not constructed`);
  return node.valueBlock.value;
}

function isContext(node: asn1js.AsnType | undefined, tag: number): boolean {
  return node !== undefined && node.idBlock.tagClass === 3 && node.idBlock.tagNumber === tag;
}

function universal<T extends asn1js.AsnType>(nodes: asn1js.AsnType[], type: abstract new (...args: never[]) => T): T[] {
  return nodes.filter((n): n is T => n instanceof type && n.idBlock.tagClass === 1);
}

function integerValue(node: asn1js.Integer): number {
  const value = node.valueBlock.valueDec;
  if (!Number.isSafeInteger(value) || value < 0) throw malformed('integer out of range');
  return value;
}

/** Content octets of an implicitly tagged INTEGER, read as an unsigned number. */
function implicitIntegerValue(node: asn1js.AsnType): number {
  const bytes = (node as asn1js.Primitive).valueBlock.valueHexView;
  if (!bytes || bytes.length === 0 || bytes.length > 6) throw malformed('tagged integer out of range');
  return Buffer.from(bytes).readUIntBE(0, bytes.length);
}

interface Pkcs15ObjectParts {
  common: asn1js.AsnType[];
  classAttributes: asn1js.AsnType[];
  typeAttributes: asn1js.AsnType[];
}

function objectParts(der: Uint8Array, what: string): Pkcs15ObjectParts {
  const root = parse(der);
  if (!(root instanceof asn1js.Sequence)) throw malformed(`${what} is not a SEQUENCE`);
  const [common, classAttributes, ...rest] = root.valueBlock.value;
  const typeWrapper = rest.find((n) => isContext(n, 1));
  if (!typeWrapper) throw malformed(`${what} has no typeAttributes [1]`);
  const [typeAttributes] = children(typeWrapper, 'typeAttributes [1]');
  return {
    common: children(common, 'commonObjectAttributes'),
    classAttributes: children(classAttributes, 'class attributes'),
    typeAttributes: children(typeAttributes, 'type attributes'),
  };
}

function commonAttributes(nodes: asn1js.AsnType[]): { label?: string; authId?: Buffer } {
  const out: { label?: string; authId?: Buffer } = {};
  const label = universal(nodes, asn1js.Utf8String)[0];
  if (label) out.label = label.valueBlock.value;
  const authId = universal(nodes, asn1js.OctetString)[0];
  if (authId) out.authId = Buffer.from(authId.valueBlock.valueHexView);
  return out;
}

function decodePath(node: asn1js.AsnType | undefined): Pkcs15Path {
  const fields = children(node, 'Path');
  const path = universal(fields, asn1js.OctetString)[0];
  if (!path) throw malformed('Path without path');
  const out: Pkcs15Path = { path: Buffer.from(path.valueBlock.valueHexView) };
  const index = universal(fields, asn1js.Integer)[0];
  if (index) out.index = integerValue(index);
  const length = fields.find((n) => isContext(n, 0));
  if (length) out.length = implicitIntegerValue(length);
  return out;
}

// ——— decoders ———

export function decodeCertificateObject(der: Uint8Array): Pkcs15CertificateObject {
  const { common, classAttributes, typeAttributes } = objectParts(der, 'CertificateObject');
  const id = universal(classAttributes, asn1js.OctetString)[0];
  if (!id) throw malformed('CertificateObject without iD');
  const out: Pkcs15CertificateObject = { id: Buffer.from(id.valueBlock.valueHexView), path: decodePath(typeAttributes[0]) };
  const { label } = commonAttributes(common);
  if (label !== undefined) out.label = label;
  const authority = universal(classAttributes, asn1js.Boolean)[0];
  if (authority) out.authority = authority.valueBlock.value;
  return out;
}

function decodeKeyObject(der: Uint8Array, what: string): Pkcs15KeyObject {
  const { common, classAttributes, typeAttributes } = objectParts(der, what);
  const id = universal(classAttributes, asn1js.OctetString)[0];
  const usage = universal(classAttributes, asn1js.BitString)[0];
  if (!id || !usage) throw malformed(`${what} without iD or usage`);
  const bits = decodeNamedBits(usage);
  const out: Pkcs15KeyObject = {
    ...commonAttributes(common),
    id: Buffer.from(id.valueBlock.valueHexView),
    usage: (Object.keys(PKCS15_KEY_USAGE) as Pkcs15KeyUsage[]).filter((name) => bits.has(PKCS15_KEY_USAGE[name])),
  };
  const keyReference = universal(classAttributes, asn1js.Integer)[0];
  if (keyReference) out.keyReference = integerValue(keyReference);
  const [value, modulusLength] = typeAttributes;
  if (value instanceof asn1js.Sequence) out.path = decodePath(value);
  if (modulusLength instanceof asn1js.Integer) out.modulusLength = integerValue(modulusLength);
  return out;
}

export function decodePrivateKeyObject(der: Uint8Array): Pkcs15PrivateKeyObject {
  return decodeKeyObject(der, 'PrivateKeyObject');
}

export function decodePublicKeyObject(der: Uint8Array): Pkcs15PublicKeyObject {
  return decodeKeyObject(der, 'PublicKeyObject');
}

// ——— encoders (the virtual cards' files) ———

function encodePath(path: Pkcs15Path): asn1js.Sequence {
  const value: asn1js.AsnType[] = [new asn1js.OctetString({ valueHex: path.path })];
  if (path.index !== undefined) value.push(new asn1js.Integer({ value: path.index }));
  if (path.length !== undefined) {
    // length [0] IMPLICIT INTEGER: the INTEGER's content octets under a context tag.
    const content = new asn1js.Integer({ value: path.length }).valueBlock.valueHexView;
    value.push(new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 }, valueHex: content }));
  }
  return new asn1js.Sequence({ value });
}

function encodeCommon(label: string | undefined, authId?: Buffer): asn1js.Sequence {
  const value: asn1js.AsnType[] = [];
  if (label !== undefined) value.push(new asn1js.Utf8String({ value: label }));
  if (authId !== undefined) value.push(new asn1js.OctetString({ valueHex: authId }));
  return new asn1js.Sequence({ value });
}

function explicit(tag: number, inner: asn1js.AsnType): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: tag }, value: [inner] });
}

export function encodeCertificateObject(object: Pkcs15CertificateObject): Buffer {
  const classAttributes: asn1js.AsnType[] = [new asn1js.OctetString({ valueHex: object.id })];
  if (object.authority) classAttributes.push(new asn1js.Boolean({ value: true }));
  const record = new asn1js.Sequence({
    value: [
      encodeCommon(object.label),
      new asn1js.Sequence({ value: classAttributes }),
      explicit(1, new asn1js.Sequence({ value: [encodePath(object.path)] })),
    ],
  });
  return Buffer.from(record.toBER(false));
}

function encodeKeyObject(object: Pkcs15KeyObject): Buffer {
  const classAttributes: asn1js.AsnType[] = [
    new asn1js.OctetString({ valueHex: object.id }),
    encodeNamedBits(object.usage.map((u) => PKCS15_KEY_USAGE[u])),
  ];
  if (object.keyReference !== undefined) classAttributes.push(new asn1js.Integer({ value: object.keyReference }));
  const typeAttributes: asn1js.AsnType[] = [];
  if (object.path) typeAttributes.push(encodePath(object.path));
  if (object.modulusLength !== undefined) typeAttributes.push(new asn1js.Integer({ value: object.modulusLength }));
  const record = new asn1js.Sequence({
    value: [
      encodeCommon(object.label, object.authId),
      new asn1js.Sequence({ value: classAttributes }),
      explicit(1, new asn1js.Sequence({ value: typeAttributes })),
    ],
  });
  return Buffer.from(record.toBER(false));
}

export function encodePrivateKeyObject(object: Pkcs15PrivateKeyObject): Buffer {
  return encodeKeyObject(object);
}

export function encodePublicKeyObject(object: Pkcs15PublicKeyObject): Buffer {
  return encodeKeyObject(object);
}

/** A directory file: the records one after another, then `pad` bytes up to `size`. */
export function encodeDirectoryFile(records: Uint8Array[], size: number, pad = 0x00): Buffer {
  const body = Buffer.concat(records.map((r) => Buffer.from(r)));
  if (body.length > size) throw new RangeError(`Directory records (${body.length} bytes) do not fit in ${size} bytes`);
  return Buffer.concat([body, Buffer.alloc(size - body.length, pad)]);
}

/** ASCII object ids as printed: `SIGN`, `KEYX`, `CACert`; anything else in hex. */
export function describeObjectId(id: Uint8Array): string {
  return /^[\x20-\x7e]+$/.test(Buffer.from(id).toString('latin1')) ? Buffer.from(id).toString('latin1') : Buffer.from(id).toString('hex').toUpperCase();
}
