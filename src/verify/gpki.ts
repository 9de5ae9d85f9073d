import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CertificateInput, type ParsedCertificate, loadCertificates } from './certificates.js';

/**
 * Taiwan's Government PKI as a relying site trusts it for 自然人憑證 logins: the public root
 * (GRCA) and issuing (MOICA) certificates shipped in the package's `certs/` folder, each pinned
 * here by the SHA-256 of its DER, plus the G3 generation, which an operator supplies and which
 * is accepted only when it matches its pin. Public facts: ../../certs/README.md.
 */

/** MOICA's certificate policy OID (in the MOICA G2 CA certificate's certificatePolicies). */
export const MOICA_POLICY_OID = '2.16.886.101.0.3.3';

export type GpkiCertificateId = 'grca-g1' | 'grca-g2' | 'grca-g3' | 'moica-g2' | 'moica-g3';

export interface GpkiCertificateInfo {
  id: GpkiCertificateId;
  /** `root`: a trust anchor; `issuing`: a CA between the root and citizen certificates. */
  role: 'root' | 'issuing';
  /** SHA-256 of the DER, lower-case hex. */
  sha256: string;
  /** File name in `certs/`; absent for pins whose file the operator supplies. */
  file?: string;
  /** Where the CA publishes it (for the operator; the library never downloads). */
  url: string;
}

export const GPKI_CERTIFICATES: readonly GpkiCertificateInfo[] = [
  {
    id: 'grca-g1',
    role: 'root',
    sha256: '7600295eefe85b9e1fd624db76062aaaae59818a54d2774cd4c0b2c01131e1b3',
    file: 'grca-g1.pem',
    url: 'https://grca.nat.gov.tw/repository/Certs/GRCA.cer',
  },
  {
    id: 'grca-g2',
    role: 'root',
    sha256: '70b922bfda0e3f4a342e4ee22d579ae598d071cc5ec9c30f123680340388aea5',
    file: 'grca-g2.pem',
    url: 'https://grca.nat.gov.tw/repository/Certs/GRCA2.cer',
  },
  {
    id: 'moica-g2',
    role: 'issuing',
    sha256: 'c4c462de463f856804dc898338d2cecb55fba74155851599d8fb7d70218fd1be',
    file: 'moica-g2.pem',
    url: 'https://moica.nat.gov.tw/repository/Certs/MOICA2.cer',
  },
  {
    id: 'moica-g3',
    role: 'issuing',
    sha256: 'ed793fd0d50a2a398049d598982cf01e75f873b532066caec238f800a06ca9da',
    url: 'https://moica.nat.gov.tw/repository/Certs/MOICA-G3.cer',
  },
  {
    id: 'grca-g3',
    role: 'root',
    sha256: '57df6f20e04c588e85f35be8832f5d4e78958336ae3b18fb7c9bae0dfead4044',
    url: 'https://grca.nat.gov.tw/repository/Certs/GRCAG3.crt',
  },
];

/**
 * The complete CRL each MOICA generation publishes for its citizen certificates (for
 * `cardbridge crl fetch`; the CA certificates do not name it, the citizen certificates do).
 */
export const MOICA_CRL_URLS: Readonly<Partial<Record<GpkiCertificateId, string>>> = {
  'moica-g2': 'https://moica.nat.gov.tw/repository/MOICA/CRL2/complete.crl',
  'moica-g3': 'https://crl-moica.moi.gov.tw/crl/MOICA-G3-complete.crl',
};

/** The package's `certs/` folder (two levels up from src/verify or dist/verify). */
export const SHIPPED_CERTS_DIR = fileURLToPath(new URL('../../certs/', import.meta.url));

export interface GovernmentTrustOptions {
  /** Where the shipped files are; default {@link SHIPPED_CERTS_DIR}. */
  certsDir?: string;
  /** MOICA G3 / GRCA G3 (PEM or DER) downloaded by the operator; each must match its pin. */
  operatorCertificates?: CertificateInput | readonly CertificateInput[];
}

export interface GovernmentTrust {
  trustAnchors: ParsedCertificate[];
  intermediates: ParsedCertificate[];
  /** What a citizen certificate must assert: [{@link MOICA_POLICY_OID}]. */
  requiredPolicies: string[];
  loaded: Array<{ id: GpkiCertificateId; sha256: string; source: 'shipped' | 'operator' }>;
}

function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Loads the shipped anchors (refusing any file that does not match its pin: a damaged or
 * altered install) and the operator's G3 certificates (refusing any that matches no pin).
 * Spread the result into a validator's or verify function's options:
 * `new AuthTokenValidator({ ...loadGovernmentTrust(), revocation })`. Throws TypeError.
 */
export function loadGovernmentTrust(options: GovernmentTrustOptions = {}): GovernmentTrust {
  const dir = options.certsDir ?? SHIPPED_CERTS_DIR;
  const out: GovernmentTrust = { trustAnchors: [], intermediates: [], requiredPolicies: [MOICA_POLICY_OID], loaded: [] };
  const add = (info: GpkiCertificateInfo, cert: ParsedCertificate, source: 'shipped' | 'operator') => {
    if (out.loaded.some((l) => l.id === info.id)) return;
    (info.role === 'root' ? out.trustAnchors : out.intermediates).push(cert);
    out.loaded.push({ id: info.id, sha256: info.sha256, source });
  };
  for (const info of GPKI_CERTIFICATES) {
    if (!info.file) continue;
    const path = join(dir, info.file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new TypeError(`Government PKI certificate ${path} cannot be read: ${(e as Error).message}`);
    }
    const [cert, ...extra] = loadCertificates(text, path);
    if (!cert || extra.length > 0) throw new TypeError(`${path} must hold exactly one certificate`);
    const actual = sha256Hex(cert.der);
    if (actual !== info.sha256) throw new TypeError(`${path}: SHA-256 ${actual} is not the pinned ${info.sha256} (damaged or altered file)`);
    add(info, cert, 'shipped');
  }
  for (const cert of loadCertificates(options.operatorCertificates, 'operatorCertificates')) {
    const actual = sha256Hex(cert.der);
    const info = GPKI_CERTIFICATES.find((c) => c.sha256 === actual);
    if (!info) throw new TypeError(`operatorCertificates: SHA-256 ${actual} is not a pinned Government PKI certificate (see certs/README.md)`);
    add(info, cert, 'operator');
  }
  return out;
}
