import { createHash } from 'node:crypto';
import { MockReaderRegistry } from '../../../src/readers/mock-registry.js';
import { MoicaService } from '../../../src/services/moica/moica-service.js';
import { VirtualMoicaGen2Card } from '../../../src/emulator/moica/virtual-moica-gen2.js';
import type { MoicaTestPki } from '../../../src/emulator/moica/test-pki.js';
import { type AuthToken, createAuthTokenTbs } from '../../../src/verify/token-format.js';
import { VerifyError } from '../../../src/verify/errors.js';

export const READER = 'Test Reader';
export const PIN = '123456';

/** A MoicaService over a virtual generation-2 card of `pki`: real card signatures. */
export async function cardService(pki: MoicaTestPki): Promise<MoicaService> {
  const registry = new MockReaderRegistry({ sharingRetryDelaysMs: [5], removalGraceMs: 50 });
  registry.addReader(READER);
  await registry.insertCard(READER, new VirtualMoicaGen2Card(pki));
  return new MoicaService(registry);
}

/** What the daemon will do for POST /v1/moica/authenticate: the card signs SHA256(tbs). */
export async function makeToken(service: MoicaService, origin: string, nonce: string): Promise<AuthToken> {
  const digest = createHash('sha256').update(createAuthTokenTbs(origin, nonce)).digest();
  const { signature, certificate } = await service.sign({ digest, hash: 'sha256', format: 'pkcs1' }, PIN);
  return {
    format: 'cardbridge-auth-token',
    version: 1,
    algorithm: 'RS256',
    certificate: certificate.toString('base64'),
    signature: signature.toString('base64'),
  };
}

/** The VerifyError code a verification fails with, or 'resolved' when it passes. */
export async function failureCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(VerifyError);
    return (e as VerifyError).code;
  }
  return 'resolved';
}
