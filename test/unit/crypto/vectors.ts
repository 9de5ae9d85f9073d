import { readFileSync } from 'node:fs';

/** Shape of test/fixtures/moica-vectors.json (hex strings without spaces). */
export interface MoicaVectors {
  source: string;
  gen1_protected_verify: Array<{
    key_ascii: string;
    pin: string;
    iv: string;
    pinbuf: string;
    mac: string;
    apdu: string;
  }>;
  gen2_diversified_keys: Array<{ card_id: string; k_enc: string; k_mac: string }>;
  gen2_scp03_verify_wrap: Array<{
    k_enc: string;
    k_mac: string;
    host_challenge: string;
    card_challenge: string;
    note: string;
    wrapped_header: string;
    wrapped_data_and_mac: string;
  }>;
  /** Known answers recorded from real cards (spec corrections section). */
  gen1_protected_verify_real_card: Array<{ note: string; key_ascii: string; pin: string; iv: string; cryptogram: string; apdu: string }>;
  gen2_diversified_keys_real_card: Array<{ note: string; card_id: string; k_enc: string; k_mac: string }>;
  gen2_scp03_verify_wrap_real_card: Array<{
    note: string;
    k_enc: string;
    k_mac: string;
    host_challenge: string;
    card_challenge: string;
    pin: string;
    wrapped_header: string;
    wrapped_data_and_mac: string;
  }>;
}

export const vectors: MoicaVectors = JSON.parse(
  readFileSync(new URL('../../fixtures/moica-vectors.json', import.meta.url), 'utf8'),
) as MoicaVectors;

export function hex(s: string): Buffer {
  if (!/^([0-9a-f]{2})*$/i.test(s)) throw new Error(`bad hex in test data: ${s}`);
  return Buffer.from(s, 'hex');
}
