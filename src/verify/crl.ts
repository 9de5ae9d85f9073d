import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { DerError, type Tlv, childrenOf, derLength, readTlv } from './der.js';
import { VerifyError } from './errors.js';
import { type ParsedCertificate, authorityKeyId, mayHaveIssued } from './path.js';

/**
 * Revocation from CRL files the operator downloads and refreshes (`cardbridge crl fetch`): the
 * verifier never goes to the network. For each certificate on a path the CRL must come from its
 * issuer (same DN AND the issuer's key identifier — the MOICA generations share one DN), its
 * signature must verify with the issuer's key, and it must be current. Fail-closed rules:
 *
 * - no usable CRL for an issuer on the path (none loaded, wrong key, bad signature, a delta or
 *   indirect CRL, or one that does not cover this kind of certificate) → `RevocationUnavailable`;
 * - the certificate's serial is listed (in any usable CRL, current or not) → `CertificateRevoked`;
 * - the newest usable CRL is past nextUpdate + `maxStalenessMs`, or has no nextUpdate →
 *   `RevocationStale`. The default grace is 0: an operator who refreshes daily never sees it,
 *   one whose refresh job stopped sees logins refused rather than silently unchecked.
 */

/** DER bytes, or PEM text (`X509 CRL`). */
export type CrlInput = Uint8Array | string;

export interface LoadedCrl {
  der: Buffer;
  /**
   * Everything but the revoked-certificate list, parsed by pkijs (issuer, dates, extensions,
   * algorithms). The list itself is read by der.ts into {@link revoked}.
   */
  crl: pkijs.CertificateRevocationList;
  /** The signed TBSCertList, exactly as in the file. */
  tbs: Buffer;
  /** The signature BIT STRING's value (without the unused-bits octet). */
  signatureValue: Buffer;
  /** Where it was read from, for messages and `crl status`. */
  source: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  authorityKeyId?: Buffer;
  /** Revoked serial numbers, upper-case hex without leading zero bytes. */
  revoked: Set<string>;
}

export interface RevocationOptions {
  crls: CrlStore;
  /** How long after nextUpdate a CRL is still accepted; default 0. */
  maxStalenessMs?: number;
  /** `chain` (default): the citizen certificate and every CA certificate below the root; `leaf`: the citizen certificate only. */
  scope?: 'chain' | 'leaf';
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/;
const OID = {
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  issuingDistributionPoint: '2.5.29.28',
  deltaCrlIndicator: '2.5.29.27',
} as const;
const HASH_BY_SIGNATURE_OID: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
/** A CRL dated this far in the future still counts (clock skew between the CA and us). */
const CLOCK_SKEW_MS = 5 * 60_000;

export function serialHex(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i)).toString('hex').toUpperCase();
}

/** Parses one CRL; throws TypeError (a bad CRL file is the operator's configuration problem). */
export function parseCrl(input: CrlInput, source = 'CRL'): LoadedCrl {
  let der: Buffer;
  if (typeof input === 'string') {
    const pem = PEM_CRL.exec(input);
    if (!pem) throw new TypeError(`${source}: a string must hold a PEM X509 CRL block`);
    der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  } else if (input instanceof Uint8Array) {
    const text = Buffer.from(input.subarray(0, 64)).toString('latin1');
    der = text.includes('-----BEGIN X509 CRL-----') ? parseCrl(Buffer.from(input).toString('latin1'), source).der : Buffer.from(input);
  } else {
    throw new TypeError(`${source}: give DER bytes or PEM text`);
  }
  let parts: ReturnType<typeof splitCrl>;
  let crl: pkijs.CertificateRevocationList;
  try {
    parts = splitCrl(der);
    crl = pkijs.CertificateRevocationList.fromBER(parts.skeleton);
  } catch (e) {
    throw new TypeError(`${source}: not a DER X.509 CRL (${e instanceof Error ? e.message : String(e)})`);
  }
  const out: LoadedCrl = {
    der,
    crl,
    tbs: parts.tbs,
    signatureValue: parts.signatureValue,
    source,
    thisUpdate: crl.thisUpdate.value,
    revoked: parts.revoked,
  };
  if (crl.nextUpdate) out.nextUpdate = crl.nextUpdate.value;
  const aki = authorityKeyId(crl);
  if (aki) out.authorityKeyId = aki;
  return out;
}

const TAG = { sequence: 0x30, integer: 0x02, bitString: 0x03, utcTime: 0x17, generalizedTime: 0x18 } as const;

/**
 * Splits a CertificateList: the TBSCertList bytes (for the signature), the signature, the
 * revoked serial numbers (read entry by entry), and a skeleton — the same CRL without its
 * revoked list — small enough for pkijs to parse the rest.
 */
function splitCrl(der: Buffer): { tbs: Buffer; signatureValue: Buffer; revoked: Set<string>; skeleton: Buffer } {
  const outer = readTlv(der, 0);
  if (outer.tag !== TAG.sequence || outer.end !== der.length) throw new DerError('not a single DER SEQUENCE');
  const [tbs, algorithm, signature, ...extra] = childrenOf(der, outer);
  if (!tbs || !algorithm || !signature || extra.length > 0 || tbs.tag !== TAG.sequence || signature.tag !== TAG.bitString) {
    throw new DerError('not a CertificateList (tbsCertList, signatureAlgorithm, signatureValue)');
  }
  const fields = childrenOf(der, tbs);
  // [version] signature issuer thisUpdate [nextUpdate] [revokedCertificates] [[0] crlExtensions]
  let i = fields[0]?.tag === TAG.integer ? 3 : 2;
  const isTime = (t: Tlv | undefined) => t !== undefined && (t.tag === TAG.utcTime || t.tag === TAG.generalizedTime);
  if (!isTime(fields[i])) throw new DerError('no thisUpdate');
  i++;
  if (isTime(fields[i])) i++;
  const revoked = new Set<string>();
  let listIndex = -1;
  if (fields[i]?.tag === TAG.sequence) {
    listIndex = i;
    for (const entry of childrenOf(der, fields[i]!)) {
      const serial = readTlv(der, entry.contentStart, entry.end);
      if (entry.tag !== TAG.sequence || serial.tag !== TAG.integer) throw new DerError('a revoked entry without a serial number');
      revoked.add(serialHex(der.subarray(serial.contentStart, serial.end)));
    }
  }
  const kept = fields.filter((_, k) => k !== listIndex).map((f) => der.subarray(f.start, f.end));
  const tbsBody = Buffer.concat(kept);
  const skeletonTbs = Buffer.concat([Buffer.from([TAG.sequence]), derLength(tbsBody.length), tbsBody]);
  const skeletonBody = Buffer.concat([skeletonTbs, der.subarray(algorithm.start, algorithm.end), der.subarray(signature.start, signature.end)]);
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    signatureValue: der.subarray(signature.contentStart + 1, signature.end),
    revoked,
    skeleton: Buffer.concat([Buffer.from([TAG.sequence]), derLength(skeletonBody.length), skeletonBody]),
  };
}

function fileSignature(path: string): string {
  const s = statSync(path);
  return `${s.mtimeMs}:${s.size}:${s.ino}`;
}

export interface CrlDirectoryOptions {
  /** How often to look for changed files (ms); default 60 s. 0: on every check. */
  recheckMs?: number;
}

/**
 * The CRLs a verifier uses. From inputs (fixed), or from a directory of `*.crl` files (DER or
 * PEM) that is re-read when a file changes, so `cardbridge crl fetch` by cron takes effect
 * without a restart. Parsing is synchronous: a generated CRL of the size of MOICA's G2 complete
 * CRL (412 000 entries, 20 MB) takes about a second and 200 MB of memory to load.
 */
export class CrlStore {
  #crls: LoadedCrl[];
  readonly #directory: string | undefined;
  readonly #recheckMs: number;
  #checkedAt = 0;
  #files = new Map<string, { signature: string; crl: LoadedCrl }>();
  #problems: string[] = [];
  readonly #signatureChecks = new WeakMap<LoadedCrl, Map<string, boolean>>();

  constructor(inputs: readonly CrlInput[], directory?: { path: string; recheckMs: number }) {
    this.#crls = inputs.map((input, i) => parseCrl(input, `crls[${i}]`));
    this.#directory = directory?.path;
    this.#recheckMs = directory?.recheckMs ?? 0;
    if (directory) {
      this.#rescan();
      if (this.#problems.length > 0) throw new TypeError(this.#problems.join('; '));
    }
  }

  /**
   * Loads every `*.crl` file in `dir`; throws TypeError if one cannot be read or parsed now.
   * Later re-reads never throw: a file that became unreadable keeps its last good version
   * (staleness still applies), a new unreadable one is left out, an unreadable directory
   * leaves no CRLs (so checks fail closed); see {@link problems}.
   */
  static fromDirectory(dir: string, options: CrlDirectoryOptions = {}): CrlStore {
    const recheckMs = options.recheckMs ?? 60_000;
    if (!(recheckMs >= 0)) throw new RangeError('recheckMs must be ≥ 0');
    return new CrlStore([], { path: dir, recheckMs });
  }

  /** The CRLs now (re-reading changed files of a directory store when due). */
  current(now = Date.now()): readonly LoadedCrl[] {
    if (this.#directory !== undefined && now - this.#checkedAt >= this.#recheckMs) this.#rescan();
    return this.#crls;
  }

  /** What the last read of the directory could not use, one sentence each (for logs and monitoring). */
  get problems(): readonly string[] {
    return this.#problems;
  }

  #rescan(): void {
    const dir = this.#directory!;
    this.#checkedAt = Date.now();
    const problems: string[] = [];
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.crl')).sort();
    } catch (e) {
      this.#problems = [`CRL directory ${dir} cannot be read: ${(e as Error).message}`];
      this.#files = new Map();
      this.#crls = [];
      return;
    }
    const next = new Map<string, { signature: string; crl: LoadedCrl }>();
    for (const name of names) {
      const path = join(dir, name);
      const known = this.#files.get(path);
      try {
        const signature = fileSignature(path);
        next.set(path, known && known.signature === signature ? known : { signature, crl: parseCrl(readFileSync(path), path) });
      } catch (e) {
        problems.push(`${e instanceof Error ? e.message : String(e)}${known ? ' (using its previous version)' : ''}`);
        if (known) next.set(path, known);
      }
    }
    this.#files = next;
    this.#crls = [...next.values()].map((f) => f.crl);
    this.#problems = problems;
  }

  /** Whether `crl`'s signature verifies with `issuer`'s key (cached per pair). */
  signedBy(crl: LoadedCrl, issuer: ParsedCertificate): boolean {
    let byIssuer = this.#signatureChecks.get(crl);
    if (!byIssuer) this.#signatureChecks.set(crl, (byIssuer = new Map()));
    const key = issuer.der.toString('base64');
    let ok = byIssuer.get(key);
    if (ok === undefined) byIssuer.set(key, (ok = crlSignedBy(crl, issuer)));
    return ok;
  }
}

export function crlSignedBy(crl: LoadedCrl, issuer: ParsedCertificate): boolean {
  const hash = HASH_BY_SIGNATURE_OID[crl.crl.signature.algorithmId];
  if (!hash || crl.crl.signatureAlgorithm.algorithmId !== crl.crl.signature.algorithmId) return false;
  try {
    const key = createPublicKey({ key: Buffer.from(issuer.certificate.subjectPublicKeyInfo.toSchema().toBER(false)), format: 'der', type: 'spki' });
    return verifySignature(hash, crl.tbs, key, crl.signatureValue);
  } catch {
    return false;
  }
}

/** Why a CRL cannot be used for `cert`, or undefined when it can. */
function unusable(crl: LoadedCrl, isCa: boolean): string | undefined {
  for (const ext of crl.crl.crlExtensions?.extensions ?? []) {
    if (ext.extnID === OID.deltaCrlIndicator) return 'it is a delta CRL';
    if (ext.critical && ext.extnID !== OID.issuingDistributionPoint && ext.extnID !== OID.authorityKeyIdentifier && ext.extnID !== OID.crlNumber) {
      return `it has an unknown critical extension ${ext.extnID}`;
    }
    if (ext.extnID === OID.issuingDistributionPoint) {
      const idp = ext.parsedValue as pkijs.IssuingDistributionPoint | undefined;
      if (!idp) return 'its issuingDistributionPoint is unreadable';
      if (idp.indirectCRL || idp.onlyContainsAttributeCerts || idp.onlySomeReasons !== undefined) return 'it is a partial or indirect CRL';
      if (idp.onlyContainsCACerts && !isCa) return 'it covers CA certificates only';
      if (idp.onlyContainsUserCerts && isCa) return 'it covers end-entity certificates only';
    }
  }
  return undefined;
}

function describeCert(cert: ParsedCertificate): string {
  return `serial ${serialHex(cert.certificate.serialNumber.valueBlock.valueHexView)}`;
}

/** Throws TypeError/RangeError for revocation options that cannot work (called by the verifiers' constructors). */
export function checkRevocationOptions(options: RevocationOptions): void {
  if (!(options?.crls instanceof CrlStore)) throw new TypeError('revocation.crls must be a CrlStore (new CrlStore([...]) or CrlStore.fromDirectory(dir))');
  if (options.maxStalenessMs !== undefined && !(options.maxStalenessMs >= 0)) throw new RangeError('revocation.maxStalenessMs must be ≥ 0');
  if (options.scope !== undefined && options.scope !== 'chain' && options.scope !== 'leaf') throw new TypeError('revocation.scope must be "chain" or "leaf"');
}

/**
 * Checks the certificates of `path` (subject first, anchor last; the anchor itself is not
 * checked) against the store's CRLs. Throws {@link VerifyError} as described at the top.
 */
export function checkRevocation(path: readonly ParsedCertificate[], options: RevocationOptions, now: Date): void {
  checkRevocationOptions(options);
  const grace = options.maxStalenessMs ?? 0;
  const crls = options.crls.current();
  const count = options.scope === 'leaf' ? Math.min(1, path.length - 1) : path.length - 1;
  for (let i = 0; i < count; i++) {
    const cert = path[i]!;
    const issuer = path[i + 1]!;
    const isCa = i > 0;
    const reasons: string[] = [];
    const usable = crls.filter((crl) => {
      if (!mayHaveIssued(issuer.certificate, crl.crl)) return false;
      const why = unusable(crl, isCa);
      if (why) reasons.push(`${crl.source}: ${why}`);
      else if (crl.thisUpdate.getTime() > now.getTime() + CLOCK_SKEW_MS) reasons.push(`${crl.source}: issued in the future (${crl.thisUpdate.toISOString()})`);
      else if (!options.crls.signedBy(crl, issuer)) reasons.push(`${crl.source}: its signature does not verify with the issuer's key`);
      else return true;
      return false;
    });
    const what = isCa ? `the CA certificate (${describeCert(cert)})` : `the certificate (${describeCert(cert)})`;
    if (usable.length === 0) {
      const aki = authorityKeyId(cert.certificate);
      throw new VerifyError(
        'RevocationUnavailable',
        `No usable CRL from the issuer of ${what}${aki ? ` (key id ${aki.toString('hex').toUpperCase()})` : ''}` +
          (reasons.length ? `: ${reasons.join('; ')}` : '; run "cardbridge crl fetch" and load the files'),
      );
    }
    const serial = serialHex(cert.certificate.serialNumber.valueBlock.valueHexView);
    const listing = usable.find((crl) => crl.revoked.has(serial));
    if (listing) throw new VerifyError('CertificateRevoked', `${what} is revoked (listed in ${listing.source})`);
    const newest = usable.reduce((a, b) => (b.thisUpdate > a.thisUpdate ? b : a));
    if (!newest.nextUpdate || now.getTime() > newest.nextUpdate.getTime() + grace) {
      throw new VerifyError(
        'RevocationStale',
        `The newest CRL for ${what} (${newest.source}) ${newest.nextUpdate ? `was due for renewal at ${newest.nextUpdate.toISOString()}` : 'has no nextUpdate'}; refresh it with "cardbridge crl fetch"`,
      );
    }
  }
}
