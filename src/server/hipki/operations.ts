import type { ReaderRegistry } from '../../readers/types.js';
import type { MoicaCardSelector, MoicaService, MoicaSignFormat, PinUse } from '../../services/moica/moica-service.js';
import type { MoicaCertificate } from '../../cards/moica/moica-card.js';
import { ATTRIBUTE_NAMES as FACT_ATTRIBUTE_NAMES, parseCertificate } from '../../crypto/certificate-facts.js';
import type { Pkcs1HashName } from '../../crypto/pkcs1.js';
import { RET, HipkiRequestError } from './ret-codes.js';
import { type TbsPackage, decodeBase64, field, flag } from './tbs-package.js';

/**
 * The HiPKI use cases over cardbridge's services: pkcs11info, MakeSignature, DecryptData.
 * Each returns the success fields of the reply (the app adds func, ret_code, last_error) and
 * throws the vocabulary (or HipkiRequestError) otherwise. No HTTP here.
 */

export interface HipkiContext {
  registry: ReaderRegistry;
  moica: MoicaService;
  now: () => Date;
}

// ——— pkcs11info ———

export interface HipkiCertJson {
  label: string;
  usage: string;
  certb64: string;
  sn: string;
  subjectDN: string;
  issuerDN: string;
  notBeforeT: number;
  notAfterT: number;
  id: string;
  subjectID: string;
}

export interface HipkiKeyJson {
  label: string;
  id: string;
  keyType: 'RSA';
  modulusBits: number;
  usage: string;
}

export interface HipkiToken {
  serialNumber: string;
  label: string;
  manufacturerID: string;
  model: string;
  certs?: HipkiCertJson[];
  keys?: HipkiKeyJson[];
}

export interface HipkiSlot {
  slotDescription: string;
  token: HipkiToken | 'unknown token';
}

/** The bytes of a PKCS#15 object id as the driver describes it (ASCII, or hex when not printable). */
export function objectIdBytes(id: string): Buffer {
  if (/^([0-9A-F]{2})+$/.test(id)) {
    const bytes = Buffer.from(id, 'hex');
    if (!/^[\x20-\x7e]+$/.test(bytes.toString('latin1'))) return bytes;
  }
  return Buffer.from(id, 'latin1');
}

/** As HiPKI's subjectDN/issuerDN write them: the usual short names, and `E` for the e-mail address. */
const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = { ...FACT_ATTRIBUTE_NAMES, '1.2.840.113549.1.9.1': 'E' };

/** `C=TW,CN=…,serialNumber=…`: the certificate's own attribute order, comma-joined as pages expect. */
function distinguishedNames(der: Buffer): { subject: string; issuer: string } {
  const cert = parseCertificate(der);
  const text = (name: typeof cert.subject) =>
    name.typesAndValues
      .map((tv) => {
        const value = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
        return `${ATTRIBUTE_NAMES[tv.type] ?? tv.type}=${typeof value === 'string' ? value : Buffer.from(tv.value.valueBeforeDecodeView).toString('hex')}`;
      })
      .join(',');
  return { subject: text(cert.subject), issuer: text(cert.issuer) };
}

/** cert1 = signing, cert2 = encryption, CA certificates as the official component labels them. */
function certLabel(certificate: MoicaCertificate): string {
  if (certificate.facts.role === 'sign') return 'cert1';
  if (certificate.facts.role === 'encrypt') return 'cert2';
  return 'CA Cert';
}

/**
 * The official component reports the signing certificate as `digitalSignature` (pages compare
 * the string), encryption as `keyEncipherment|dataEncipherment`, CAs as `keyCertSign|cRLSign`:
 * the role's characteristic bits, not every bit of the extension.
 */
function certUsage(certificate: MoicaCertificate): string {
  const usage = certificate.facts.keyUsage;
  const pick = (names: string[]) => names.filter((n) => usage.includes(n as never)).join('|');
  if (certificate.facts.role === 'sign') return pick(['digitalSignature']) || pick(['nonRepudiation']);
  if (certificate.facts.role === 'encrypt') return pick(['keyEncipherment', 'dataEncipherment']);
  return pick(['keyCertSign', 'cRLSign']);
}

function certJson(certificate: MoicaCertificate): HipkiCertJson {
  const { facts } = certificate;
  const names = distinguishedNames(certificate.der);
  return {
    label: certLabel(certificate),
    usage: certUsage(certificate),
    certb64: certificate.der.toString('base64'),
    sn: facts.serialNumber.toLowerCase(),
    subjectDN: names.subject,
    issuerDN: names.issuer,
    notBeforeT: Math.floor(facts.notBefore.getTime() / 1000),
    notAfterT: Math.floor(facts.notAfter.getTime() / 1000),
    id: objectIdBytes(certificate.id).toString('base64'),
    subjectID: facts.idLastFour ?? '',
  };
}

function keyJson(certificate: MoicaCertificate): HipkiKeyJson {
  return {
    label: certificate.facts.role === 'sign' ? 'key1' : 'key2',
    id: objectIdBytes(certificate.id).toString('base64'),
    keyType: 'RSA',
    modulusBits: certificate.facts.publicKey?.bits ?? 2048,
    usage: certificate.facts.role === 'sign' ? 'sign' : 'decrypt',
  };
}

/**
 * One slot per reader; a MOICA card is a token, anything else (or a card that cannot be read
 * now) is `"unknown token"`. No reader at all is NoReader (0x76100003).
 */
export async function pkcs11Info(context: HipkiContext, withCert: boolean, onSlotError?: (reader: string, error: unknown) => void): Promise<{ slots: HipkiSlot[] }> {
  const readers = context.registry.locateReaders({});
  const slots: HipkiSlot[] = [];
  for (const reader of readers) {
    if (reader.card?.type.kind !== 'moica') {
      slots.push({ slotDescription: reader.name, token: 'unknown token' });
      continue;
    }
    try {
      const info = await context.moica.cardInfo({ reader: reader.name });
      const token: HipkiToken = {
        serialNumber: info.serialNumber,
        label: 'MOICA',
        manufacturerID: 'cardbridge',
        model: `MOICA gen ${info.generation} (${info.version})`,
      };
      if (withCert) {
        const certificates = await context.moica.listCertificates({ reader: reader.name });
        token.certs = certificates.map(certJson);
        token.keys = certificates.filter((c) => c.keyReference !== undefined).map(keyJson);
      }
      slots.push({ slotDescription: reader.name, token });
    } catch (e) {
      onSlotError?.(reader.name, e);
      slots.push({ slotDescription: reader.name, token: 'unknown token' });
    }
  }
  return { slots };
}

// ——— MakeSignature ———

const HASHES: Record<string, Pkcs1HashName> = { SHA1: 'sha1', 'SHA-1': 'sha1', SHA256: 'sha256', 'SHA-256': 'sha256', SHA384: 'sha384', 'SHA-384': 'sha384', SHA512: 'sha512', 'SHA-512': 'sha512' };
const FORMATS: Record<string, MoicaSignFormat> = { PKCS7: 'cms', PKCS1: 'pkcs1', RAW: 'raw' };

/** `0` and empty mean "any" in the naming fields (one page sends `slotDescription: 0`). */
function naming(pkg: TbsPackage, name: string): string | undefined {
  const value = field(pkg, name)?.trim();
  return value === undefined || value === '' || value === '0' ? undefined : value;
}

/**
 * The card a request names: a reader by `slotDescription` or ChtICToken's `readername` (the
 * pkcs11info slotDescription), and/or the card itself by `cardid` (pkcs11info's
 * token.serialNumber, the reply's cardSN). Every name given must hold: the service refuses
 * (NoReader, NoCard) rather than use another card. Readers named twice must agree.
 */
export function cardOf(pkg: TbsPackage): MoicaCardSelector {
  const slot = naming(pkg, 'slotDescription');
  const readerName = naming(pkg, 'readername');
  if (slot !== undefined && readerName !== undefined && slot !== readerName) {
    throw new HipkiRequestError(RET.PARAM_ERROR, 'slotDescription and readername name different readers');
  }
  const reader = slot ?? readerName;
  const serialNumber = naming(pkg, 'cardid');
  return { ...(reader === undefined ? {} : { reader }), ...(serialNumber === undefined ? {} : { serialNumber }) };
}

/** The PIN a legacy page sent (ChtICToken sends it twice, as `pin` and `userpin`). */
function pinOf(pkg: TbsPackage): string {
  const pin = field(pkg, 'pin') ?? field(pkg, 'userpin');
  if (pin === undefined || pin === '') throw new HipkiRequestError(RET.NO_PIN, 'No PIN in the request');
  return pin;
}

function tbsBytes(pkg: TbsPackage): Buffer {
  const tbs = field(pkg, 'tbs');
  if (tbs === undefined) throw new HipkiRequestError(RET.PARAM_ERROR, 'No tbs in the request');
  const encoding = (field(pkg, 'tbsEncoding') ?? '').toUpperCase();
  if (encoding === '' || encoding === 'NONE') return Buffer.from(tbs, 'utf8');
  if (encoding === 'BASE64') return decodeBase64(tbs, RET.BASE64_TBS, 'tbs');
  throw new HipkiRequestError(RET.PARAM_ERROR, `Unknown tbsEncoding "${encoding}"`);
}

export interface HipkiSignature {
  signature: string;
  certb64: string;
  cardSN: string;
  reader: string;
  /** What the audit line says, e.g. `PKCS7/SHA256`. */
  summary: string;
}

/**
 * HiPKI's conditions on the signing certificate (keyidb64, checkValidity), read from the
 * request now and checked by the service inside its one exclusive session, before the PIN is
 * spent. Which key signs is the service's rule (`signingKey`), not repeated here.
 */
function signingKeyCheck(context: HipkiContext, pkg: TbsPackage): ((key: MoicaCertificate) => void) | undefined {
  const keyId = field(pkg, 'keyidb64');
  const checkValidity = flag(pkg, 'checkValidity');
  const wanted = keyId === undefined || keyId === '' ? undefined : decodeBase64(keyId, RET.BASE64_KEYID, 'keyidb64');
  if (!wanted && !checkValidity) return undefined;
  return (signing) => {
    if (wanted && !objectIdBytes(signing.id).equals(wanted)) {
      // cardbridge signs with the signing key only; any other key (or none) is not found.
      throw new HipkiRequestError(RET.CERT_NOT_FOUND, 'keyidb64 does not name the card’s signing key');
    }
    if (checkValidity) {
      const now = context.now();
      if (now < signing.facts.notBefore) throw new HipkiRequestError(RET.CERT_NOT_YET_VALID, 'The signing certificate is not valid yet');
      if (now > signing.facts.notAfter) throw new HipkiRequestError(RET.CERT_EXPIRED, 'The signing certificate has expired');
    }
  };
}

/** MakeSignature: PKCS1 / PKCS7 / RAW over the tbs bytes with the card's signing key. */
export async function makeSignature(context: HipkiContext, pkg: TbsPackage, use: PinUse = {}): Promise<HipkiSignature> {
  const data = tbsBytes(pkg);
  const hashName = (field(pkg, 'hashAlgorithm') ?? '').toUpperCase() || 'SHA256';
  const hash = HASHES[hashName];
  if (!hash) throw new HipkiRequestError(RET.PARAM_ERROR, `Unknown hashAlgorithm "${hashName}"`);
  const typeName = (field(pkg, 'signatureType') ?? '').toUpperCase() || 'PKCS7';
  const format = FORMATS[typeName];
  if (!format) throw new HipkiRequestError(RET.PARAM_ERROR, `Unknown signatureType "${typeName}"`);
  if (format === 'cms' && data.length === 0) throw new HipkiRequestError(RET.PARAM_ERROR, 'Nothing to sign');
  const pin = pinOf(pkg);
  const selector = cardOf(pkg);
  const checkSigningKey = signingKeyCheck(context, pkg);
  const signed = await context.moica.sign(
    {
      ...(checkSigningKey ? { checkSigningKey } : {}),
      data,
      hash,
      format,
      ...(format === 'cms' ? { detached: false, signingTime: flag(pkg, 'withSigningTime') } : {}),
      ...selector,
    },
    pin,
    use,
  );
  return {
    signature: signed.signature.toString('base64'),
    certb64: signed.certificate.toString('base64'),
    cardSN: signed.serialNumber,
    reader: signed.reader,
    summary: `${typeName}/${hashName.replace('-', '')}`,
  };
}

// ——— DecryptData ———

export interface HipkiPlain {
  plain: string;
  reader: string;
}

/** DecryptData: PKCS#1 v1.5 with the card's encryption key. */
export async function decryptData(context: HipkiContext, pkg: TbsPackage, use: PinUse = {}): Promise<HipkiPlain> {
  const cipherText = field(pkg, 'cipher');
  if (cipherText === undefined || cipherText === '') throw new HipkiRequestError(RET.PARAM_ERROR, 'No cipher in the request');
  const cipher = decodeBase64(cipherText, RET.BASE64_CIPHER, 'cipher');
  const plainEncoding = (field(pkg, 'plainEncoding') ?? '').toUpperCase();
  if (!['', 'NONE', 'BASE64'].includes(plainEncoding)) throw new HipkiRequestError(RET.PARAM_ERROR, `Unknown plainEncoding "${plainEncoding}"`);
  const pin = pinOf(pkg);
  const selector = cardOf(pkg);
  const plain = await context.moica.decrypt(cipher, pin, selector, use);
  try {
    return { plain: plainEncoding === 'BASE64' ? plain.toString('base64') : plain.toString('utf8'), reader: selector.reader ?? '' };
  } finally {
    plain.fill(0);
  }
}
