import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { invalidInput, requireBytes } from './bytes.js';
import { type Pkcs1HashName, pkcs1DigestLength } from './pkcs1.js';

/**
 * CMS SignedData (RFC 5652) built with pkijs around a signature made elsewhere: the card holds
 * the key, so this module builds the signed attributes, hands their digest to `sign` and puts
 * the returned PKCS#1 v1.5 signature into the SignerInfo.
 */

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  rsaEncryption: '1.2.840.113549.1.1.1',
} as const;

const HASH_OIDS: Record<Pkcs1HashName, string> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};

export interface CmsSignOptions {
  /** The content. Required unless `digest` is given (which makes the result detached). */
  content?: Uint8Array;
  /** A precomputed digest of the content (detached signatures only). */
  digest?: Uint8Array;
  /** Leave the content out of the SignedData (default false when `content` is given). */
  detached?: boolean;
  hash?: Pkcs1HashName;
  /** DER certificate of the signing key. */
  signerCertificate: Uint8Array;
  /** More certificates to include (e.g. the issuing CA). */
  extraCertificates?: Uint8Array[];
  /** The signingTime attribute; `null` leaves it out (default: now). */
  signingTime?: Date | null;
  /**
   * Produces the PKCS#1 v1.5 RSA signature of the DER signed attributes, given their digest
   * under `hash` (e.g. builds the padded block and runs the card's private-key operation).
   */
  sign(digest: Buffer, hash: Pkcs1HashName): Promise<Uint8Array>;
}

function algorithm(oid: string, withNull: boolean): pkijs.AlgorithmIdentifier {
  return new pkijs.AlgorithmIdentifier(withNull ? { algorithmId: oid, algorithmParams: new asn1js.Null() } : { algorithmId: oid });
}

function attribute(type: string, value: asn1js.AsnType): pkijs.Attribute {
  return new pkijs.Attribute({ type, values: [value] });
}

/** DER orders a SET OF by the encodings of its elements. */
function derSorted(attributes: pkijs.Attribute[]): pkijs.Attribute[] {
  return attributes
    .map((a) => ({ a, der: Buffer.from(a.toSchema().toBER(false)) }))
    .sort((x, y) => Buffer.compare(x.der, y.der))
    .map((x) => x.a);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5652 §11.3). */
function timeValue(date: Date): asn1js.AsnType {
  return date.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate: date }) : new asn1js.GeneralizedTime({ valueDate: date });
}

function certificate(der: Uint8Array): pkijs.Certificate {
  const bytes = requireBytes('certificate', der);
  try {
    return pkijs.Certificate.fromBER(bytes);
  } catch {
    throw invalidInput('A certificate for the SignedData is not DER X.509');
  }
}

/** Builds a DER-encoded ContentInfo holding SignedData with one signer. */
export async function createCmsSignedData(options: CmsSignOptions): Promise<Buffer> {
  const hash = options.hash ?? 'sha256';
  const hashOid = HASH_OIDS[hash];
  if (!hashOid) throw invalidInput(`Unsupported hash '${String(hash)}'`);
  let digest: Buffer;
  let content: Buffer | undefined;
  if (options.content !== undefined) {
    content = requireBytes('content', options.content);
    digest = createHash(hash).update(content).digest();
    if (options.digest !== undefined && !requireBytes('digest', options.digest).equals(digest)) {
      throw invalidInput('digest does not match the content');
    }
  } else if (options.digest !== undefined) {
    digest = Buffer.from(requireBytes('digest', options.digest, pkcs1DigestLength(hash)));
    if (options.detached === false) throw invalidInput('An attached signature needs the content, not only its digest');
  } else {
    throw invalidInput('Give the content or its digest');
  }
  const detached = options.detached ?? content === undefined;

  const signer = certificate(options.signerCertificate);
  const extra = (options.extraCertificates ?? []).map(certificate);

  const attributes = [
    attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: OID.data })),
    attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: digest })),
  ];
  const signingTime = options.signingTime === undefined ? new Date() : options.signingTime;
  if (signingTime !== null) attributes.push(attribute(OID.signingTime, timeValue(signingTime)));
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: derSorted(attributes) });

  // The signature covers the attributes with the SET OF tag (31), not the [0] used in place.
  const toBeSigned = Buffer.from(signedAttrs.toSchema().toBER(false));
  toBeSigned[0] = 0x31;
  const signature = await options.sign(createHash(hash).update(toBeSigned).digest(), hash);

  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: signer.issuer, serialNumber: signer.serialNumber }),
    digestAlgorithm: algorithm(hashOid, false),
    signedAttrs,
    signatureAlgorithm: algorithm(OID.rsaEncryption, true),
    signature: new asn1js.OctetString({ valueHex: new Uint8Array(signature) }),
  });
  const encapContentInfo = new pkijs.EncapsulatedContentInfo(
    detached || content === undefined
      ? { eContentType: OID.data }
      : { eContentType: OID.data, eContent: new asn1js.OctetString({ valueHex: content }) },
  );
  const signedData = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [algorithm(hashOid, false)],
    encapContentInfo,
    certificates: [signer, ...extra],
    signerInfos: [signerInfo],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: OID.signedData, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}
