import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CardBridgeError } from '../errors.js';
import { decodeNamedBits } from './named-bits.js';

/**
 * What cardbridge needs to know about a MOICA certificate, read with pkijs: who holds it, who
 * issued it, when it is valid and what it is for (specs/moica-card.md §4).
 */

/** subjectDirectoryAttributes attribute carrying the last four characters of the holder's ID. */
export const MOICA_ID_LAST_FOUR_OID = '2.16.886.1.100.2.51';

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectDirectoryAttributes: '2.5.29.9',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  rsaEncryption: '1.2.840.113549.1.1.1',
} as const;

/** Short names of the distinguished-name attributes MOICA certificates use. */
export const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

export const KEY_USAGE_NAMES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGE_NAMES)[number];

export type CertificateRole = 'sign' | 'encrypt' | 'ca';

export interface RsaPublicKeyFacts {
  /** Big-endian modulus without leading zero bytes. */
  modulus: Buffer;
  exponent: number;
  bits: number;
}

export interface CertificateFacts {
  /** RFC 4514-like, in the certificate's own attribute order: `C=TW, CN=…, serialNumber=…`. */
  subject: string;
  issuer: string;
  /** Subject CN: the holder's name on user certificates. */
  holderName?: string;
  /** Subject serialNumber (16 digits on MOICA user certificates). */
  subjectSerialNumber?: string;
  /** Last four characters of the holder's national ID (attribute 2.16.886.1.100.2.51). */
  idLastFour?: string;
  /** Certificate serial number, upper-case hex. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  keyUsage: KeyUsageName[];
  isCa: boolean;
  role: CertificateRole;
  publicKey?: RsaPublicKeyFacts;
  /** SHA-256 of the DER certificate, upper-case hex. */
  sha256: string;
}

function malformed(message: string, cause?: unknown): CardBridgeError {
  return new CardBridgeError('ProtocolError', `Certificate: ${message}`, cause === undefined ? {} : { cause });
}

function asnString(value: unknown): string | undefined {
  const block = (value as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock;
  return typeof block?.value === 'string' ? block.value : undefined;
}

function nameToString(name: pkijs.RelativeDistinguishedNames): string {
  return name.typesAndValues
    .map((tv) => `${ATTRIBUTE_NAMES[tv.type] ?? tv.type}=${asnString(tv.value) ?? Buffer.from(tv.value.valueBeforeDecodeView).toString('hex')}`)
    .join(', ');
}

function nameAttribute(name: pkijs.RelativeDistinguishedNames, type: string): string | undefined {
  const found = name.typesAndValues.find((tv) => tv.type === type);
  return found ? asnString(found.value) : undefined;
}

function stripLeadingZeros(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i));
}

function rsaPublicKey(cert: pkijs.Certificate): RsaPublicKeyFacts | undefined {
  const spki = cert.subjectPublicKeyInfo;
  if (spki.algorithm.algorithmId !== OID.rsaEncryption) return undefined;
  const parsed = asn1js.fromBER(spki.subjectPublicKey.valueBlock.valueHexView);
  if (parsed.offset === -1) throw malformed('unreadable RSA public key');
  const key = new pkijs.RSAPublicKey({ schema: parsed.result });
  const modulus = stripLeadingZeros(key.modulus.valueBlock.valueHexView);
  const exponentBytes = stripLeadingZeros(key.publicExponent.valueBlock.valueHexView);
  if (exponentBytes.length > 6) throw malformed('RSA public exponent too large');
  return { modulus, exponent: exponentBytes.readUIntBE(0, exponentBytes.length), bits: bitLength(modulus) };
}

function bitLength(modulus: Buffer): number {
  if (modulus.length === 0) return 0;
  return (modulus.length - 1) * 8 + (32 - Math.clz32(modulus[0]!));
}

function extensionValue(cert: pkijs.Certificate, oid: string): asn1js.AsnType | undefined {
  const ext = cert.extensions?.find((e) => e.extnID === oid);
  if (!ext) return undefined;
  const parsed = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
  if (parsed.offset === -1) throw malformed(`unreadable extension ${oid}`);
  return parsed.result;
}

function idLastFour(cert: pkijs.Certificate): string | undefined {
  const value = extensionValue(cert, OID.subjectDirectoryAttributes);
  if (!value) return undefined;
  const attributes = new pkijs.SubjectDirectoryAttributes({ schema: value });
  const attribute = attributes.attributes.find((a) => a.type === MOICA_ID_LAST_FOUR_OID);
  return attribute ? asnString(attribute.values[0]) : undefined;
}

function keyUsage(cert: pkijs.Certificate): KeyUsageName[] {
  const value = extensionValue(cert, OID.keyUsage);
  if (!value) return [];
  if (!(value instanceof asn1js.BitString)) throw malformed('keyUsage is not a BIT STRING');
  const bits = decodeNamedBits(value);
  return KEY_USAGE_NAMES.filter((_, i) => bits.has(i));
}

function isCa(cert: pkijs.Certificate): boolean {
  const value = extensionValue(cert, OID.basicConstraints);
  return value ? new pkijs.BasicConstraints({ schema: value }).cA : false;
}

/** `role`: a CA certificate, else encryption when the key may not sign, else signing. */
export function certificateRole(usage: readonly KeyUsageName[], ca: boolean): CertificateRole {
  if (ca || usage.includes('keyCertSign')) return 'ca';
  const signs = usage.includes('digitalSignature') || usage.includes('nonRepudiation');
  const encrypts = usage.includes('keyEncipherment') || usage.includes('dataEncipherment');
  return encrypts && !signs ? 'encrypt' : 'sign';
}

export function parseCertificate(der: Uint8Array): pkijs.Certificate {
  try {
    return pkijs.Certificate.fromBER(der);
  } catch (e) {
    throw malformed('not a DER X.509 certificate', e);
  }
}

export function certificateFacts(der: Uint8Array): CertificateFacts {
  const cert = parseCertificate(der);
  try {
    const usage = keyUsage(cert);
    const ca = isCa(cert);
    const facts: CertificateFacts = {
      subject: nameToString(cert.subject),
      issuer: nameToString(cert.issuer),
      serialNumber: Buffer.from(cert.serialNumber.valueBlock.valueHexView).toString('hex').toUpperCase(),
      notBefore: cert.notBefore.value,
      notAfter: cert.notAfter.value,
      keyUsage: usage,
      isCa: ca,
      role: certificateRole(usage, ca),
      sha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
    };
    const holderName = nameAttribute(cert.subject, OID.commonName);
    if (holderName !== undefined) facts.holderName = holderName;
    const subjectSerial = nameAttribute(cert.subject, OID.serialNumber);
    if (subjectSerial !== undefined) facts.subjectSerialNumber = subjectSerial;
    const lastFour = idLastFour(cert);
    if (lastFour !== undefined) facts.idLastFour = lastFour;
    const publicKey = rsaPublicKey(cert);
    if (publicKey) facts.publicKey = publicKey;
    return facts;
  } catch (e) {
    if (e instanceof CardBridgeError) throw e;
    throw malformed(e instanceof Error ? e.message : String(e), e);
  }
}
