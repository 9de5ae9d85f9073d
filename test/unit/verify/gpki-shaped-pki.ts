import {
  TEST_ISSUING_CA_NAME,
  TEST_KEY_USAGE as KU,
  TEST_ROOT_CA_NAME,
  type TestCertificate,
  issueTestCertificate,
  keyIdentifierOf,
  rsaKeyPair,
} from '../../../src/emulator/moica/test-pki.js';
import { MOICA_POLICY_OID } from '../../../src/verify/index.js';

/**
 * A generated PKI shaped like the Government PKI: a GRCA-like root, two MOICA-like issuing CAs
 * with the SAME subject DN (as G2 and G3 have), and citizen certificates from the newer one —
 * so only the Authority Key Identifier can select the right issuer. All names say TEST.
 */

export const NOW = new Date('2026-06-01T00:00:00Z');
const at = (iso: string) => new Date(iso);

export interface GpkiShapedPki {
  root: TestCertificate;
  /** Same DN as newCa, other key (like MOICA G2 next to G3). */
  oldCa: TestCertificate;
  newCa: TestCertificate;
  /** digitalSignature + nonRepudiation, MOICA policy, ID last four 6789. */
  citizen: TestCertificate;
  expired: TestCertificate;
  wrongPolicy: TestCertificate;
  /** keyEncipherment + dataEncipherment only (the card's second certificate). */
  encryptOnly: TestCertificate;
  /** A CA of the same DN whose own certificate does not assert the policy, and its citizen. */
  unpoliciedCa: TestCertificate;
  citizenOfUnpoliciedCa: TestCertificate;
}

const CITIZEN = [
  ['2.5.4.6', 'TW'],
  ['2.5.4.3', '測試二'],
  ['2.5.4.5', '9900000000005678'],
] as const;

export async function createGpkiShapedPki(): Promise<GpkiShapedPki> {
  const rootKeys = rsaKeyPair();
  const root = await issueTestCertificate({
    serial: 0x6001,
    subject: TEST_ROOT_CA_NAME,
    issuer: 'self',
    ...rootKeys,
    notBefore: at('2012-01-01T00:00:00Z'),
    notAfter: at('2037-12-31T00:00:00Z'),
    ca: true,
    keyUsage: [KU.keyCertSign, KU.cRLSign],
  });
  const rootRef = { name: TEST_ROOT_CA_NAME, privateKey: rootKeys.privateKey, keyId: keyIdentifierOf(root) };
  const ca = async (serial: number, keys: ReturnType<typeof rsaKeyPair>, policies?: string[]) =>
    issueTestCertificate({
      serial,
      subject: TEST_ISSUING_CA_NAME,
      issuer: rootRef,
      ...keys,
      notBefore: at('2014-01-01T00:00:00Z'),
      notAfter: at('2034-01-01T00:00:00Z'),
      ca: true,
      pathLength: 0,
      keyUsage: [KU.keyCertSign, KU.cRLSign],
      ...(policies ? { policies } : {}),
    });
  const oldKeys = rsaKeyPair();
  const newKeys = rsaKeyPair();
  const oldCa = await ca(0x6002, oldKeys, [MOICA_POLICY_OID]);
  const newCa = await ca(0x6003, newKeys, [MOICA_POLICY_OID]);
  const unpoliciedCa = await ca(0x6004, oldKeys); // same key as oldCa: a re-issued CA certificate without policies
  const citizenKeys = rsaKeyPair();
  const person = async (
    serial: number,
    issuerCa: TestCertificate,
    issuerKeys: ReturnType<typeof rsaKeyPair>,
    overrides: { notBefore?: Date; notAfter?: Date; policies?: string[]; keyUsage?: number[] } = {},
  ) =>
    issueTestCertificate({
      serial,
      subject: CITIZEN,
      issuer: { name: TEST_ISSUING_CA_NAME, privateKey: issuerKeys.privateKey, keyId: keyIdentifierOf(issuerCa) },
      ...citizenKeys,
      notBefore: overrides.notBefore ?? at('2026-01-01T00:00:00Z'),
      notAfter: overrides.notAfter ?? at('2031-01-01T00:00:00Z'),
      ca: false,
      keyUsage: overrides.keyUsage ?? [KU.digitalSignature, KU.nonRepudiation],
      holderIdLastFour: '6789',
      policies: overrides.policies ?? [MOICA_POLICY_OID],
      crlDistributionPoints: ['http://test.invalid/crl/complete.crl'],
    });
  return {
    root,
    oldCa,
    newCa,
    citizen: await person(0x7001, newCa, newKeys),
    expired: await person(0x7002, newCa, newKeys, { notBefore: at('2020-01-01T00:00:00Z'), notAfter: at('2025-01-01T00:00:00Z') }),
    wrongPolicy: await person(0x7003, newCa, newKeys, { policies: ['2.16.886.101.0.3.99'] }),
    encryptOnly: await person(0x7004, newCa, newKeys, { keyUsage: [KU.keyEncipherment, KU.dataEncipherment] }),
    unpoliciedCa,
    citizenOfUnpoliciedCa: await person(0x7005, unpoliciedCa, oldKeys),
  };
}
