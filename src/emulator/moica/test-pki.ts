import { type KeyObject, createHash, generateKeyPairSync, webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { encodeNamedBits } from '../../crypto/named-bits.js';
import { MOICA_ID_LAST_FOUR_OID } from '../../crypto/certificate-facts.js';

/**
 * A throw-away PKI shaped like MOICA's, for the virtual cards, the demo and relying-site
 * developers' tests: a root CA, an issuing CA and one holder with a signing and an encryption
 * certificate. Every name says TEST; keys are generated at run time, never shipped or committed
 * (written to disk only into a directory given with `serve --mock --pki`, see test-pki-store.ts).
 */

export interface TestCertificate {
  der: Buffer;
  pem: string;
  certificate: pkijs.Certificate;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface TestHolder {
  name: string;
  /** The 16-digit subject serialNumber of MOICA user certificates. */
  serialNumber: string;
  /** Last four characters of the (fake) national ID, carried in 2.16.886.1.100.2.51. */
  idLastFour: string;
}

export interface MoicaTestPki {
  root: TestCertificate;
  issuing: TestCertificate;
  /** keyUsage digitalSignature + nonRepudiation (the card's `SIGN` key). */
  sign: TestCertificate;
  /** keyUsage keyEncipherment + dataEncipherment (the card's `KEYX` key). */
  encrypt: TestCertificate;
  holder: TestHolder;
  /** Root then issuing CA, PEM, e.g. for `openssl cms -verify -CAfile`. */
  caBundlePem: string;
}

export interface TestPkiOptions {
  holder?: Partial<TestHolder>;
  /** Validity is computed from this instant (default: now); everything else is fixed. */
  now?: Date;
}

export const TEST_ROOT_CA_NAME = [
  ['2.5.4.6', 'TW'],
  ['2.5.4.10', 'cardbridge TEST'],
  ['2.5.4.3', 'TEST Government Root Certification Authority (NOT REAL)'],
] as const;

export const TEST_ISSUING_CA_NAME = [
  ['2.5.4.6', 'TW'],
  ['2.5.4.10', 'cardbridge TEST'],
  ['2.5.4.11', 'TEST 內政部憑證管理中心 (NOT REAL)'],
] as const;

export const TEST_HOLDER: TestHolder = { name: '測試一', serialNumber: '9900000000001234', idLastFour: '6789' };

const OID = {
  certificatePolicies: '2.5.29.32',
  crlDistributionPoints: '2.5.29.31',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectDirectoryAttributes: '2.5.29.9',
  country: '2.5.4.6',
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
} as const;

/** X.509 KeyUsage bit numbers. */
export const TEST_KEY_USAGE = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyCertSign: 5, cRLSign: 6 };

const DAY_MS = 24 * 3600 * 1000;

export type NameSpec = ReadonlyArray<readonly [string, string]>;

/** PrintableString where X.520 wants it (country, serialNumber), UTF8String for text. */
function buildName(spec: NameSpec): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({
    typesAndValues: spec.map(
      ([type, value]) =>
        new pkijs.AttributeTypeAndValue({
          type,
          value:
            type === OID.country || type === OID.serialNumber
              ? new asn1js.PrintableString({ value })
              : new asn1js.Utf8String({ value }),
        }),
    ),
  });
}

function extension(extnID: string, critical: boolean, value: asn1js.AsnType | { toSchema(): asn1js.AsnType }): pkijs.Extension {
  const schema = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

function keyIdentifier(spki: pkijs.PublicKeyInfo): Uint8Array {
  return createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
}

/** What {@link issueTestCertificate} needs: tests of relying-party checks vary each field. */
export interface IssueRequest {
  serial: number;
  subject: NameSpec;
  publicKey: KeyObject;
  issuer: { name: NameSpec; privateKey: KeyObject; keyId: Uint8Array } | 'self';
  privateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  keyUsage: number[];
  holderIdLastFour?: string;
  /** certificatePolicies policy OIDs (MOICA's own certificates carry 2.16.886.101.0.3.3). */
  policies?: string[];
  /** CRL distribution point URIs. */
  crlDistributionPoints?: string[];
  /** basicConstraints pathLenConstraint of a CA. */
  pathLength?: number;
}

/** Issues one certificate (the building block of {@link createTestPki}, exported for verifier tests). */
export async function issueTestCertificate(request: IssueRequest): Promise<TestCertificate> {
  const spki = pkijs.PublicKeyInfo.fromBER(request.publicKey.export({ type: 'spki', format: 'der' }));
  const ownKeyId = keyIdentifier(spki);
  const issuer =
    request.issuer === 'self' ? { name: request.subject, privateKey: request.privateKey, keyId: ownKeyId } : request.issuer;
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ value: request.serial });
  cert.issuer = buildName(issuer.name);
  cert.subject = buildName(request.subject);
  cert.notBefore = new pkijs.Time({ type: 0, value: request.notBefore });
  cert.notAfter = new pkijs.Time({ type: 0, value: request.notAfter });
  cert.subjectPublicKeyInfo = spki;
  const extensions: pkijs.Extension[] = [];
  if (request.ca) {
    extensions.push(extension(OID.basicConstraints, true, new pkijs.BasicConstraints(request.pathLength === undefined ? { cA: true } : { cA: true, pathLenConstraint: request.pathLength })));
  }
  extensions.push(extension(OID.keyUsage, true, encodeNamedBits(request.keyUsage)));
  extensions.push(extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: ownKeyId })));
  if (request.issuer !== 'self') {
    extensions.push(
      extension(
        OID.authorityKeyIdentifier,
        false,
        new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: issuer.keyId }) }),
      ),
    );
  }
  if (request.holderIdLastFour !== undefined) {
    const attributes = new pkijs.SubjectDirectoryAttributes({
      attributes: [
        new pkijs.Attribute({
          type: MOICA_ID_LAST_FOUR_OID,
          values: [new asn1js.PrintableString({ value: request.holderIdLastFour })],
        }),
      ],
    });
    extensions.push(extension(OID.subjectDirectoryAttributes, false, attributes));
  }
  if (request.policies) {
    const policies = request.policies.map((policyIdentifier) => new pkijs.PolicyInformation({ policyIdentifier }));
    extensions.push(extension(OID.certificatePolicies, false, new pkijs.CertificatePolicies({ certificatePolicies: policies })));
  }
  if (request.crlDistributionPoints) {
    const points = request.crlDistributionPoints.map(
      (uri) => new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: uri })] }),
    );
    extensions.push(extension(OID.crlDistributionPoints, false, new pkijs.CRLDistributionPoints({ distributionPoints: points })));
  }
  cert.extensions = extensions;

  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    issuer.privateKey.export({ type: 'pkcs8', format: 'der' }),
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  await cert.sign(signingKey as unknown as Parameters<pkijs.Certificate['sign']>[0], 'SHA-256');
  const der = Buffer.from(cert.toSchema(true).toBER(false));
  return {
    der,
    pem: toPem(der),
    certificate: pkijs.Certificate.fromBER(der),
    privateKey: request.privateKey,
    publicKey: request.publicKey,
  };
}

export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

export function rsaKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
}

/** Builds a new PKI (four RSA-2048 key pairs: slow, about a second). */
export async function createTestPki(options: TestPkiOptions = {}): Promise<MoicaTestPki> {
  const holder: TestHolder = { ...TEST_HOLDER, ...options.holder };
  if (!/^\d{16}$/.test(holder.serialNumber)) throw new RangeError('Holder serialNumber must be 16 digits');
  const now = options.now ?? new Date();
  const start = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - DAY_MS);
  const years = (n: number) => new Date(start.getTime() + n * 365 * DAY_MS);

  const rootKeys = rsaKeyPair();
  const root = await issueTestCertificate({
    serial: 0x7e570001,
    subject: TEST_ROOT_CA_NAME,
    issuer: 'self',
    ...rootKeys,
    notBefore: start,
    notAfter: years(20),
    ca: true,
    keyUsage: [TEST_KEY_USAGE.keyCertSign, TEST_KEY_USAGE.cRLSign],
  });
  const issuingKeys = rsaKeyPair();
  const issuing = await issueTestCertificate({
    serial: 0x7e570002,
    subject: TEST_ISSUING_CA_NAME,
    issuer: { name: TEST_ROOT_CA_NAME, privateKey: rootKeys.privateKey, keyId: keyIdentifierOf(root) },
    ...issuingKeys,
    notBefore: start,
    notAfter: years(10),
    ca: true,
    keyUsage: [TEST_KEY_USAGE.keyCertSign, TEST_KEY_USAGE.cRLSign],
  });
  const issuingRef = { name: TEST_ISSUING_CA_NAME, privateKey: issuingKeys.privateKey, keyId: keyIdentifierOf(issuing) };
  const holderName: NameSpec = [
    [OID.country, 'TW'],
    [OID.commonName, holder.name],
    [OID.serialNumber, holder.serialNumber],
  ];
  const sign = await issueTestCertificate({
    serial: 0x7e571001,
    subject: holderName,
    issuer: issuingRef,
    ...rsaKeyPair(),
    notBefore: start,
    notAfter: years(5),
    ca: false,
    keyUsage: [TEST_KEY_USAGE.digitalSignature, TEST_KEY_USAGE.nonRepudiation],
    holderIdLastFour: holder.idLastFour,
  });
  const encrypt = await issueTestCertificate({
    serial: 0x7e571002,
    subject: holderName,
    issuer: issuingRef,
    ...rsaKeyPair(),
    notBefore: start,
    notAfter: years(5),
    ca: false,
    keyUsage: [TEST_KEY_USAGE.keyEncipherment, TEST_KEY_USAGE.dataEncipherment],
    holderIdLastFour: holder.idLastFour,
  });
  return { root, issuing, sign, encrypt, holder, caBundlePem: root.pem + issuing.pem };
}

export function keyIdentifierOf(cert: TestCertificate): Uint8Array {
  return keyIdentifier(cert.certificate.subjectPublicKeyInfo);
}

let shared: Promise<MoicaTestPki> | undefined;

/**
 * The process-wide test PKI (key generation is slow, so it is made once). `fresh: true` (or any
 * option) builds a separate one, e.g. for a card whose certificate must not match another's;
 * names, serial numbers and validity are fixed, only the keys differ between PKIs.
 */
export function getTestPki(options: TestPkiOptions & { fresh?: boolean } = {}): Promise<MoicaTestPki> {
  const { fresh, ...rest } = options;
  // Options other than `fresh` describe a different PKI, so they never touch the shared one.
  if (fresh || Object.keys(rest).length > 0) return createTestPki(rest);
  shared ??= createTestPki();
  return shared;
}
