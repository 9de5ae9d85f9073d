import { vectors } from './vectors.js';

// Each group below has its own test file that runs every entry; a new group in the fixture must
// come with a test, so an unknown group fails here instead of being silently ignored.
const TESTED_GROUPS = [
  'gen1_protected_verify',
  'gen2_diversified_keys',
  'gen2_scp03_verify_wrap',
  'gen1_protected_verify_real_card',
  'gen2_diversified_keys_real_card',
  'gen2_scp03_verify_wrap_real_card',
];

describe('moica-vectors fixture', () => {
  it('cites its source', () => {
    expect(vectors.source).toMatch(/moica\.json/);
    for (const entry of [...vectors.gen1_protected_verify_real_card, ...vectors.gen2_diversified_keys_real_card, ...vectors.gen2_scp03_verify_wrap_real_card]) {
      expect(entry.note).toMatch(/real card.*Corrections from an open PKCS#11 module/);
    }
  });

  it('holds only vector groups that have tests, none of them empty', () => {
    const groups = Object.keys(vectors).filter((k) => k !== 'source');
    expect(groups.sort()).toEqual([...TESTED_GROUPS].sort());
    for (const g of TESTED_GROUPS) {
      expect((vectors as unknown as Record<string, unknown[]>)[g]!.length).toBeGreaterThan(0);
    }
  });

  it('has hex strings without spaces', () => {
    const textFields = new Set(['note', 'pin', 'key_ascii']);
    for (const g of TESTED_GROUPS) {
      for (const entry of (vectors as unknown as Record<string, Array<Record<string, string>>>)[g]!) {
        for (const [field, value] of Object.entries(entry)) {
          if (!textFields.has(field)) expect(value).toMatch(/^([0-9a-f]{2})+$/);
        }
      }
    }
  });
});
