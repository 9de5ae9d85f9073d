import { readFileSync } from 'node:fs';
import { HINTS, MESSAGES, hintText, messageText } from '../../../src/client/messages.js';

/** The members of a string-literal union type as written in a source file. */
function unionMembers(file: string, typeName: string): string[] {
  const source = readFileSync(new URL(`../../../src/${file}`, import.meta.url), 'utf8');
  const start = source.indexOf(`export type ${typeName} =`);
  if (start < 0) throw new Error(`no type ${typeName} in ${file}`);
  const body = source.slice(start, source.indexOf(';', start));
  return [...body.matchAll(/\|\s*'([A-Za-z]+)'/g)].map((m) => m[1]!);
}

const HAN = /\p{Script=Han}/u;

describe('the message catalogue', () => {
  const codes = [...new Set([...unionMembers('errors.ts', 'ErrorCode'), ...unionMembers('client/index.ts', 'CardBridgeErrorCode'), ...unionMembers('client/messages.ts', 'DetectionState')])];

  it('finds the codes it checks', () => {
    expect(codes).toEqual(expect.arrayContaining(['NoService', 'RateLimited', 'NotRunning', 'PopupBlocked', 'CertificateUntrusted', 'Ready']));
    expect(codes.length).toBeGreaterThan(25);
  });

  it.each(codes)('%s has a Traditional Chinese and an English text', (code) => {
    const message = (MESSAGES as Record<string, { 'zh-TW': string; en: string }>)[code];
    expect(message).toBeDefined();
    expect(message!['zh-TW']).toMatch(HAN);
    expect(message!.en).toMatch(/^[A-Za-z][^\u3400-\u9fff]*$/);
  });

  it('every hint has both languages, and the service hint names the real system unit', () => {
    for (const [code, hint] of Object.entries(HINTS)) {
      expect([code, hint!['zh-TW']]).toEqual([code, expect.stringMatching(HAN)]);
      expect([code, hint!.en.length > 0]).toEqual([code, true]);
    }
    const unit = readFileSync(new URL('../../../systemd/cardbridge.service', import.meta.url), 'utf8');
    expect(unit).toContain('[Install]');
    expect(hintText('NotRunning')).toContain('sudo systemctl enable --now cardbridge');
    expect(hintText('NotRunning')).not.toContain('--user');
    expect(hintText('SiteNotAllowed', 'https://www.example.gov.tw')).toContain('sudo cardbridge sites allow https://www.example.gov.tw');
    expect(messageText('NoCard')).toBe('讀卡機中沒有卡片 (No card in the reader)');
    expect(messageText('Nope')).toBeUndefined();
  });
});

describe('the consent and PIN window speaks through the catalogue', () => {
  it('carries every message and shows a problem as catalogue text, detail and hint', async () => {
    const { APPROVE_JS } = await import('../../../src/server/native/ui-assets.js');
    for (const m of Object.values(MESSAGES)) {
      expect(APPROVE_JS).toContain(JSON.stringify(m['zh-TW']));
      expect(APPROVE_JS).toContain(JSON.stringify(m.en));
    }
    expect(APPROVE_JS).toContain('function said(p)');
    expect(APPROVE_JS).not.toMatch(/textContent = r\.body\.detail|textContent = view\.problem \? view\.problem\.detail/);
  });
});
