import { type KeyObject, X509Certificate, createHash, generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/**
 * The local certificate authority behind cardbridge's HTTPS listeners.
 *
 * A fresh CA is generated, issues exactly one server certificate, and is forgotten: its private
 * key is a non-extractable WebCrypto key that lives only for the duration of `issueLocalCertificates`,
 * so it can never be written to disk. The CA carries a critical NameConstraints extension that
 * permits only the names the bridge serves, so even a stolen leaf key (or a CA whose key was
 * somehow kept) cannot impersonate any other site to a browser that trusts the CA.
 */

/** DNS names the leaf serves and the CA permits. */
export const SERVED_DNS_NAMES = ['localhost', 'iccert.nhi.gov.tw'] as const;
/** IP addresses the leaf serves; the CA permits exactly these (as /32 and /128). */
export const SERVED_IP_ADDRESSES = ['127.0.0.1', '::1'] as const;

/** Apple's limit for locally trusted server certificates; Chrome and Firefox accept it too. */
export const MAX_LEAF_VALIDITY_DAYS = 825;
export const DEFAULT_LEAF_VALIDITY_DAYS = 825;

/** The nickname in NSS databases and the base of the file name in system stores. */
export const CA_NICKNAME = 'cardbridge local CA';

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  nameConstraints: '2.5.29.30',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** GeneralName CHOICE tags (RFC 5280 §4.2.1.6). */
const GN = { dNSName: 2, iPAddress: 7 } as const;

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
const KU = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

const DAY_MS = 24 * 3600 * 1000;
const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface IssueOptions {
  /** Validity starts one hour before this instant (clock skew); default now. */
  now?: Date;
  /** Leaf validity in days, at most MAX_LEAF_VALIDITY_DAYS. */
  validityDays?: number;
  /** Shown in the CA's subject (OU) so an administrator can tell whose CA it is. */
  hostLabel?: string;
  /**
   * DNS names for the leaf (default SERVED_DNS_NAMES). Only tests change it, to show that a
   * leaf for any other name fails the CA's name constraints.
   */
  leafDnsNames?: readonly string[];
}

export interface IssuedCertificates {
  caPem: string;
  leafPem: string;
  /** PKCS#8 PEM of the leaf's private key (the only key that survives). */
  leafKeyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export function toPem(der: Uint8Array, label: string): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Every PEM block of one label in a text, as DER. */
export function pemBlocks(text: string, label = 'CERTIFICATE'): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** A distinguished name with one attribute per RDN (pkijs alone would make one multi-valued RDN). */
function name(parts: ReadonlyArray<readonly [string, string]>): pkijs.RelativeDistinguishedNames {
  const schema = new asn1js.Sequence({
    value: parts.map(
      ([type, value]) => new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) }).toSchema()] }),
    ),
  });
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(schema.toBER(false)).result });
}

function extension(extnID: string, critical: boolean, value: { toSchema(): asn1js.AsnType } | asn1js.AsnType): pkijs.Extension {
  const schema = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

/** A KeyUsage BIT STRING with the given bits set (DER: trailing zero bits dropped). */
function keyUsage(bits: number[]): asn1js.BitString {
  const highest = Math.max(...bits);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return new asn1js.BitString({ valueHex: bytes, unusedBits: 7 - (highest & 7) });
}

function ipBytes(address: string): Uint8Array {
  const family = isIP(address);
  if (family === 4) return Uint8Array.from(address.split('.').map(Number));
  if (family !== 6) throw new RangeError(`Not an IP address: ${address}`);
  // Expand "::" then write eight 16-bit groups (only plain IPv6 forms are needed here).
  const [head = '', tail = ''] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

function dnsName(value: string): pkijs.GeneralName {
  return new pkijs.GeneralName({ type: GN.dNSName, value });
}

function ipName(bytes: Uint8Array): pkijs.GeneralName {
  return new pkijs.GeneralName({ type: GN.iPAddress, value: new asn1js.OctetString({ valueHex: bytes }) });
}

/** Address followed by an all-ones mask: exactly one host (RFC 5280 §4.2.1.10). */
function ipHostSubtree(address: string): pkijs.GeneralName {
  const addr = ipBytes(address);
  const mask = new Uint8Array(addr.length).fill(0xff);
  const both = new Uint8Array(addr.length * 2);
  both.set(addr);
  both.set(mask, addr.length);
  return ipName(both);
}

function keyId(spki: pkijs.PublicKeyInfo): Uint8Array {
  return createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
}

/** A positive 127-bit serial, fresh every time, so two generations never share issuer+serial. */
function randomSerial(): asn1js.Integer {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f | 0x40;
  return new asn1js.Integer({ valueHex: bytes });
}

type SigningKey = Parameters<pkijs.Certificate['sign']>[0];

async function exportSpki(key: webcrypto.CryptoKey | KeyObject): Promise<pkijs.PublicKeyInfo> {
  const der = 'export' in key ? key.export({ type: 'spki', format: 'der' }) : Buffer.from(await webcrypto.subtle.exportKey('spki', key));
  return pkijs.PublicKeyInfo.fromBER(der);
}

/**
 * Generates a new name-constrained CA, issues the server certificate with it and drops the CA
 * key. Both keys are ECDSA P-256.
 */
export async function issueLocalCertificates(options: IssueOptions = {}): Promise<IssuedCertificates> {
  const validityDays = options.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
  if (!(validityDays > 0 && validityDays <= MAX_LEAF_VALIDITY_DAYS)) {
    throw new RangeError(`Leaf validity must be 1..${MAX_LEAF_VALIDITY_DAYS} days`);
  }
  const now = options.now ?? new Date();
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600 * 1000);
  const notAfter = new Date(notBefore.getTime() + validityDays * DAY_MS);
  const generation = randomBytes(4).toString('hex');

  // The CA key cannot be exported, by construction: it dies with this function's scope.
  const caKeys = (await webcrypto.subtle.generateKey(ECDSA_P256, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const caSpki = await exportSpki(caKeys.publicKey);
  const caKeyId = keyId(caSpki);
  const caName = name([
    [OID.organization, 'cardbridge'],
    ...(options.hostLabel ? [[OID.organizationalUnit, options.hostLabel] as const] : []),
    [OID.commonName, `${CA_NICKNAME} ${generation}`],
  ]);

  const ca = new pkijs.Certificate();
  ca.version = 2;
  ca.serialNumber = randomSerial();
  ca.issuer = caName;
  ca.subject = caName;
  ca.notBefore = new pkijs.Time({ type: 0, value: notBefore });
  ca.notAfter = new pkijs.Time({ type: 0, value: notAfter });
  ca.subjectPublicKeyInfo = caSpki;
  ca.extensions = [
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
    extension(OID.keyUsage, true, keyUsage([KU.keyCertSign, KU.cRLSign])),
    extension(
      OID.nameConstraints,
      true,
      new pkijs.NameConstraints({
        permittedSubtrees: [
          ...SERVED_DNS_NAMES.map((n) => new pkijs.GeneralSubtree({ base: dnsName(n) })),
          ...SERVED_IP_ADDRESSES.map((a) => new pkijs.GeneralSubtree({ base: ipHostSubtree(a) })),
        ],
      }),
    ),
    extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: caKeyId })),
  ];
  await ca.sign(caKeys.privateKey as unknown as SigningKey, 'SHA-256');

  const leafKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const leafSpki = await exportSpki(leafKeys.publicKey);
  const leaf = new pkijs.Certificate();
  leaf.version = 2;
  leaf.serialNumber = randomSerial();
  leaf.issuer = caName;
  leaf.subject = name([
    [OID.organization, 'cardbridge'],
    [OID.commonName, 'localhost'],
  ]);
  leaf.notBefore = new pkijs.Time({ type: 0, value: notBefore });
  leaf.notAfter = new pkijs.Time({ type: 0, value: notAfter });
  leaf.subjectPublicKeyInfo = leafSpki;
  leaf.extensions = [
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: false })),
    extension(OID.keyUsage, true, keyUsage([KU.digitalSignature])),
    extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth] })),
    extension(
      OID.subjectAltName,
      false,
      new pkijs.GeneralNames({ names: [...(options.leafDnsNames ?? SERVED_DNS_NAMES).map(dnsName), ...SERVED_IP_ADDRESSES.map((a) => ipName(ipBytes(a)))] }),
    ),
    extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: keyId(leafSpki) })),
    extension(
      OID.authorityKeyIdentifier,
      false,
      new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: caKeyId }) }),
    ),
  ];
  await leaf.sign(caKeys.privateKey as unknown as SigningKey, 'SHA-256');

  const caPem = toPem(new Uint8Array(ca.toSchema(true).toBER(false)), 'CERTIFICATE');
  const leafPem = toPem(new Uint8Array(leaf.toSchema(true).toBER(false)), 'CERTIFICATE');
  // Belt and braces: what we hand out must verify with Node's own X.509 code.
  const caX509 = new X509Certificate(caPem);
  if (!new X509Certificate(leafPem).verify(caX509.publicKey)) throw new Error('issued leaf does not verify against its CA');
  return {
    caPem,
    leafPem,
    leafKeyPem: leafKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    notBefore,
    notAfter,
  };
}
