import { CardBridgeError, type ErrorCode } from '../../../src/errors.js';
import { HipkiRequestError, LAST_ERROR, RET, RET_MESSAGES, hipkiFailure } from '../../../src/server/hipki/ret-codes.js';
import { NOT_EXISTED, decodeBase64, field, flag, formDecode, funcOf, parseTbsPackage } from '../../../src/server/hipki/tbs-package.js';
import { MAX_BMP_TEXT, MAX_BMP_WIDTH, asciiJson, bmpToText, textToBmp } from '../../../src/server/shared/json-bitmap.js';

describe('HiPKI ret_code / last_error mapping', () => {
  const numbers = (code: ErrorCode, operation: 'info' | 'sign' | 'decrypt' | 'other' = 'sign', triesLeft?: number) => {
    const failure = hipkiFailure(new CardBridgeError(code, 'x', triesLeft === undefined ? {} : { triesLeft }), operation);
    return [failure.ret_code, failure.last_error];
  };

  it('keeps the spec’s numbers', () => {
    expect(RET).toMatchObject({
      NO_CARD: 0x76000006, JSON_ERROR: 0x7600000b, PARAM_ERROR: 0x7600000c, EXEC_ERROR_OR_TIMEOUT: 0x7600000d, UNSUPPORTED: 0x7600000e,
      FORBIDDEN_DOMAIN: 0x7600000f, NOT_ALLOWED_ORIGIN: 0x76000031, NO_PIN: 0x76000998, CANCELLED: 0x76000999, NO_READER: 0x76100003,
      LOGIN_FAILED: 0x76100006, CERT_NOT_FOUND: 0x7610000c, CERT_NOT_YET_VALID: 0x76500001, CERT_EXPIRED: 0x76500002,
    });
    expect(RET.UNSUPPORTED).toBe(1979711502);
    expect(RET.EXEC_ERROR_OR_TIMEOUT).toBe(1979711501);
    expect(RET.SIGN_FAILED >>> 8).toBe(0x763000);
    expect(RET.DECRYPT_FAILED >>> 8).toBe(0x764000);
    for (const b64 of [RET.BASE64_TBS, RET.BASE64_CIPHER, RET.BASE64_KEYID]) expect(b64 >>> 8).toBe(0x766000);
    expect(LAST_ERROR.PIN_TWO_TRIES_LEFT).toBe(0x80000002 | 0);
    expect(LAST_ERROR.PIN_ONE_TRY_LEFT).toBe(0x80000001 | 0);
    for (const value of Object.values(RET)) expect(RET_MESSAGES[value]).toEqual(expect.any(String));
  });

  it('maps every error of the vocabulary', () => {
    expect(numbers('PinIncorrect', 'sign', 2)).toEqual([0x76100006, -2147483646]);
    expect(numbers('PinIncorrect', 'sign', 1)).toEqual([0x76100006, -2147483647]);
    expect(numbers('PinIncorrect', 'sign', 5)).toEqual([0x76100006, 0xa0]);
    expect(numbers('PinIncorrect', 'sign')).toEqual([0x76100006, 0xa0]);
    expect(numbers('PinBlocked')).toEqual([0x76100006, 0xa4]);
    expect(numbers('PinLength')).toEqual([0x76100006, 0xa2]);
    expect(numbers('NoCard')).toEqual([0x76000006, 0]);
    expect(numbers('WrongCard')).toEqual([0x76000006, 0]);
    expect(numbers('CardRemoved')).toEqual([0x76000006, 0]);
    expect(numbers('NoReader')).toEqual([0x76100003, 0]);
    expect(numbers('NoService')).toEqual([0x76100003, 0]);
    expect(numbers('UnsupportedCard')).toEqual([0x7610000c, 0]);
    expect(numbers('NotAllowedOrigin')).toEqual([0x76000031, 0]);
    expect(numbers('Cancelled')).toEqual([0x76000999, 0]);
    expect(numbers('InvalidInput')).toEqual([0x7600000c, 0]);
    for (const code of ['CardError', 'ProtocolError', 'TransportError'] as const) {
      expect(numbers(code, 'sign')).toEqual([RET.SIGN_FAILED, 0x06]);
      expect(numbers(code, 'decrypt')).toEqual([RET.DECRYPT_FAILED, 0x06]);
      expect(numbers(code, 'info')).toEqual([0x7600000d, 0]);
    }
    for (const code of ['Busy', 'SharingViolation', 'Timeout', 'Unavailable', 'RateLimited', 'SamUnavailable', 'SamError'] as const) {
      expect(numbers(code)).toEqual([0x7600000d, 0]);
    }
  });

  it('messages carry the official wording and cardbridge’s hint; edge errors keep their own number', () => {
    const blocked = hipkiFailure(new CardBridgeError('PinBlocked', 'blocked', { hint: 'unblock at the CA' }), 'sign');
    expect(blocked.message).toBe('IC卡登入失敗: 已鎖卡');
    expect(blocked.message2).toBe('blocked. unblock at the CA');
    expect(hipkiFailure(new HipkiRequestError(RET.NO_PIN, 'no pin'), 'sign')).toEqual({ ret_code: 0x76000998, last_error: 0, message: '未輸入PIN碼', message2: 'no pin' });
    expect(hipkiFailure(new Error('boom'), 'decrypt').ret_code).toBe(RET.DECRYPT_FAILED);
  });
});

describe('tbsPackage parsing', () => {
  it('form-decodes once, then parses; %2B is a plus, + is a space, a lone % survives', () => {
    expect(formDecode('a%2Bb+c%')).toBe('a+b c%');
    expect(formDecode('100%+%E4%BD%A0')).toBe('100% 你');
    expect(parseTbsPackage('tbsPackage={"tbs":"a%2Bb","pin":"%31%32"}')).toEqual({ tbs: 'a+b', pin: '12' });
    expect(parseTbsPackage('x=1&tbsPackage=%7B%22func%22%3A%22MakeSignature%22%7D&y=2')).toEqual({ func: 'MakeSignature' });
    // a page that left `&` unencoded inside the JSON
    expect(parseTbsPackage('tbsPackage={"tbs":"a&b=c"}')).toEqual({ tbs: 'a&b=c' });
    // bare JSON bodies (content-type application/json) are taken as they are
    expect(parseTbsPackage('{"tbs":"a+b"}')).toEqual({ tbs: 'a+b' });
  });

  it('fails with the protocol’s numbers', () => {
    const retOf = (body: string | undefined) => {
      try {
        parseTbsPackage(body);
        return 0;
      } catch (e) {
        return (e as HipkiRequestError).retCode;
      }
    };
    expect(retOf(undefined)).toBe(RET.PARAM_ERROR);
    expect(retOf('foo=bar')).toBe(RET.PARAM_ERROR);
    expect(retOf('tbsPackage={oops')).toBe(RET.JSON_ERROR);
    expect(retOf('tbsPackage=[1,2]')).toBe(RET.JSON_ERROR);
  });

  it('treats the sentinel as absent and reads flags', () => {
    const pkg = { a: NOT_EXISTED, b: 'true', c: 0, d: null, e: 'TRUE', f: '' };
    expect(field(pkg, 'a')).toBeUndefined();
    expect(field(pkg, 'c')).toBe('0');
    expect(field(pkg, 'd')).toBeUndefined();
    expect([flag(pkg, 'a'), flag(pkg, 'b'), flag(pkg, 'e'), flag(pkg, 'f'), flag(pkg, 'zz')]).toEqual([false, true, true, false, false]);
    expect(() => field({ x: { y: 1 } }, 'x')).toThrow(HipkiRequestError);
    expect(funcOf('tbsPackage={"func":"umakeSig"}')).toBe('umakeSig');
    expect(funcOf('garbage')).toBeUndefined();
  });

  it('decodes strict base64, spaces as the pluses a form ate, URL alphabet too', () => {
    expect(decodeBase64('++/w', 1, 'x')).toEqual(Buffer.from([0xfb, 0xef, 0xf0]));
    expect(decodeBase64('  /w', 1, 'x')).toEqual(Buffer.from([0xfb, 0xef, 0xf0]));
    expect(decodeBase64('--_w', 1, 'x')).toEqual(Buffer.from([0xfb, 0xef, 0xf0]));
    expect(() => decodeBase64('ab*c', 7, 'x')).toThrow(expect.objectContaining({ retCode: 7 }));
    expect(() => decodeBase64('abcde', 7, 'x')).toThrow(HipkiRequestError);
  });
});

describe('p11Image.bmp packing', () => {
  it('puts the text bytes in order as B,G,R, pads with spaces, ends with a zero pixel', () => {
    const bmp = textToBmp('{"a":1}');
    const offset = bmp.readUInt32LE(10);
    expect(bmp.readInt32LE(18)).toBe(4); // 7 chars → 9 with padding → 3 pixels + the zero pixel
    expect(bmp.readInt32LE(22)).toBe(1);
    expect(bmp.readUInt16LE(28)).toBe(24);
    expect(bmp.readUInt32LE(2)).toBe(bmp.length);
    expect(bmp.subarray(offset, offset + 12).toString('latin1')).toBe('{"a":1}  \0\0\0');
    expect((bmp.length - offset) % 4).toBe(0);
    expect(bmpToText(bmp)).toBe('{"a":1}  ');
    expect(JSON.parse(bmpToText(bmp))).toEqual({ a: 1 });
  });

  it('escapes non-ASCII and refuses what does not fit in 2000 pixels', () => {
    expect(asciiJson({ name: '讀卡機 é' })).toBe('{"name":"\\u8b80\\u5361\\u6a5f \\u00e9"}');
    expect(JSON.parse(asciiJson({ name: '讀卡機 é' }))).toEqual({ name: '讀卡機 é' });
    expect(textToBmp('x'.repeat(MAX_BMP_TEXT)).readInt32LE(18)).toBe(MAX_BMP_WIDTH);
    expect(() => textToBmp('x'.repeat(MAX_BMP_TEXT + 1))).toThrow(RangeError);
    expect(() => textToBmp('é')).toThrow(RangeError);
  });
});
