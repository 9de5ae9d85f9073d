import { type CardBridgeError, type ErrorCode, asCardBridgeError } from '../../errors.js';

/**
 * The ONE place where cardbridge's error vocabulary becomes the HiPKI Local Server's
 * `ret_code` (major) and `last_error` (minor) numbers (specs/hipki-local-server.md). Cards,
 * readers and services never see these numbers; the HiPKI routes call `hipkiFailure` at the
 * edge, and raise `HipkiRequestError` for what only this wire format knows (a malformed
 * tbsPackage, a missing PIN, bad base64, an unsupported func).
 *
 * The spec names ranges for signing (0x763000xx), decryption (0x764000xx) and Base64
 * (0x766000xx) errors without the individual numbers; the bridge fixes one number per failure
 * inside each range (below) and documents them in docs/compatibility.md.
 */
export const RET = {
  OK: 0,
  NO_CARD: 0x76000006,
  JSON_ERROR: 0x7600000b,
  PARAM_ERROR: 0x7600000c,
  EXEC_ERROR_OR_TIMEOUT: 0x7600000d,
  UNSUPPORTED: 0x7600000e,
  FORBIDDEN_DOMAIN: 0x7600000f,
  NOT_ALLOWED_ORIGIN: 0x76000031,
  NO_PIN: 0x76000998,
  CANCELLED: 0x76000999,
  NO_READER: 0x76100003,
  LOGIN_FAILED: 0x76100006,
  CERT_NOT_FOUND: 0x7610000c,
  /** The card failed while signing (a card or reader error after the PIN was accepted). */
  SIGN_FAILED: 0x76300001,
  /** The card failed while decrypting, or the plaintext's padding is wrong. */
  DECRYPT_FAILED: 0x76400001,
  CERT_NOT_YET_VALID: 0x76500001,
  CERT_EXPIRED: 0x76500002,
  /** `tbs` is not valid base64 (tbsEncoding "base64"). */
  BASE64_TBS: 0x76600001,
  /** `cipher` is not valid base64. */
  BASE64_CIPHER: 0x76600002,
  /** `keyidb64` is not valid base64. */
  BASE64_KEYID: 0x76600003,
} as const;

/** last_error values that go with LOGIN_FAILED (PKCS#11 CK_RV plus the vendor's retry codes). */
export const LAST_ERROR = {
  NONE: 0,
  FUNCTION_FAILED: 0x06,
  PIN_INCORRECT: 0xa0,
  PIN_LEN_RANGE: 0xa2,
  PIN_LOCKED: 0xa4,
  /** 0x80000002 as the vendor's signed 32-bit number: wrong PIN, two tries left. */
  PIN_TWO_TRIES_LEFT: -2147483646,
  /** 0x80000001: wrong PIN, one try left (also: the PIN was not sent because only one try is left). */
  PIN_ONE_TRY_LEFT: -2147483647,
} as const;

/** The messages pages show (the official component's wording). */
export const RET_MESSAGES: Readonly<Record<number, string>> = {
  [RET.OK]: '成功',
  [RET.NO_CARD]: '未插入IC卡',
  [RET.JSON_ERROR]: 'JSON格式錯誤',
  [RET.PARAM_ERROR]: '參數錯誤',
  [RET.EXEC_ERROR_OR_TIMEOUT]: '執行檔錯誤或逾時',
  [RET.UNSUPPORTED]: '不支援的方法',
  [RET.FORBIDDEN_DOMAIN]: '禁止存取的網域',
  [RET.NOT_ALLOWED_ORIGIN]: '在未授權的網站執行元件',
  [RET.NO_PIN]: '未輸入PIN碼',
  [RET.CANCELLED]: '使用者已取消動作',
  [RET.NO_READER]: '無可用讀卡機',
  [RET.LOGIN_FAILED]: 'IC卡登入失敗',
  [RET.CERT_NOT_FOUND]: '找不到指定憑證',
  [RET.SIGN_FAILED]: '簽章失敗',
  [RET.DECRYPT_FAILED]: '解密失敗',
  [RET.CERT_NOT_YET_VALID]: '憑證尚未生效',
  [RET.CERT_EXPIRED]: '憑證已逾期',
  [RET.BASE64_TBS]: 'Base64解碼錯誤(待簽資料)',
  [RET.BASE64_CIPHER]: 'Base64解碼錯誤(密文)',
  [RET.BASE64_KEYID]: 'Base64解碼錯誤(金鑰識別碼)',
};

const LAST_ERROR_MESSAGES: Readonly<Record<number, string>> = {
  [LAST_ERROR.FUNCTION_FAILED]: '函式失敗',
  [LAST_ERROR.PIN_INCORRECT]: 'PIN碼錯誤',
  [LAST_ERROR.PIN_LEN_RANGE]: 'PIN碼長度錯誤',
  [LAST_ERROR.PIN_LOCKED]: '已鎖卡',
  [LAST_ERROR.PIN_TWO_TRIES_LEFT]: 'PIN碼錯誤，剩餘兩次機會',
  [LAST_ERROR.PIN_ONE_TRY_LEFT]: 'PIN碼錯誤，剩餘一次機會',
};

/** What a HiPKI reply says about a failure. */
export interface HipkiFailure {
  ret_code: number;
  last_error: number;
  /** The official wording for ret_code (and last_error when there is one). */
  message: string;
  /** cardbridge's own explanation (English), never carrying a PIN or what was signed. */
  message2: string;
}

/** The operation a failure happened in: card failures land in that operation's range. */
export type HipkiOperation = 'info' | 'sign' | 'decrypt' | 'other';

/** A failure that only the HiPKI wire format knows about (request shape, not card state). */
export class HipkiRequestError extends Error {
  constructor(
    readonly retCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'HipkiRequestError';
  }
}

/** `63 Cx` tries left → the vendor's last_error. */
export function pinTriesLastError(triesLeft: number | undefined): number {
  if (triesLeft === 2) return LAST_ERROR.PIN_TWO_TRIES_LEFT;
  if (triesLeft === 1) return LAST_ERROR.PIN_ONE_TRY_LEFT;
  if (triesLeft === 0) return LAST_ERROR.PIN_LOCKED;
  return LAST_ERROR.PIN_INCORRECT;
}

function cardFailure(operation: HipkiOperation): { ret: number; last: number } {
  if (operation === 'sign') return { ret: RET.SIGN_FAILED, last: LAST_ERROR.FUNCTION_FAILED };
  if (operation === 'decrypt') return { ret: RET.DECRYPT_FAILED, last: LAST_ERROR.FUNCTION_FAILED };
  return { ret: RET.EXEC_ERROR_OR_TIMEOUT, last: LAST_ERROR.NONE };
}

/** The vocabulary → (ret_code, last_error). Exhaustive: a new ErrorCode fails to compile here. */
function numbersOf(error: CardBridgeError, operation: HipkiOperation): { ret: number; last: number } {
  const code: ErrorCode = error.code;
  switch (code) {
    case 'NoReader':
    case 'NoService':
      return { ret: RET.NO_READER, last: LAST_ERROR.NONE };
    case 'NoCard':
    case 'WrongCard':
    case 'CardRemoved':
      return { ret: RET.NO_CARD, last: LAST_ERROR.NONE };
    case 'UnsupportedCard':
      // A card of the right kind without the key the operation needs (e.g. no signing key).
      return { ret: RET.CERT_NOT_FOUND, last: LAST_ERROR.NONE };
    case 'PinIncorrect':
      return { ret: RET.LOGIN_FAILED, last: pinTriesLastError(error.triesLeft) };
    case 'PinBlocked':
      return { ret: RET.LOGIN_FAILED, last: LAST_ERROR.PIN_LOCKED };
    case 'PinLength':
      return { ret: RET.LOGIN_FAILED, last: LAST_ERROR.PIN_LEN_RANGE };
    case 'LastTryNeedsConfirmation':
      // Our choice (docs/compatibility.md): the login is refused before the PIN reaches the
      // card, and last_error states the card's real condition — one try left — in the vendor's
      // own number, which pages already show as a warning. message2 says what to do.
      return { ret: RET.LOGIN_FAILED, last: LAST_ERROR.PIN_ONE_TRY_LEFT };
    case 'Cancelled':
      return { ret: RET.CANCELLED, last: LAST_ERROR.NONE };
    case 'NotAllowedOrigin':
      return { ret: RET.NOT_ALLOWED_ORIGIN, last: LAST_ERROR.NONE };
    case 'InvalidInput':
      return { ret: RET.PARAM_ERROR, last: LAST_ERROR.NONE };
    case 'CardError':
    case 'ProtocolError':
    case 'TransportError':
      return cardFailure(operation);
    case 'Busy':
    case 'SharingViolation':
    case 'Timeout':
    case 'Unavailable':
    case 'RateLimited':
    case 'SamUnavailable':
    case 'SamError':
      return { ret: RET.EXEC_ERROR_OR_TIMEOUT, last: LAST_ERROR.NONE };
  }
}

function describe(ret: number, last: number): string {
  const major = RET_MESSAGES[ret] ?? '錯誤';
  const minor = last !== 0 ? LAST_ERROR_MESSAGES[last] : undefined;
  return minor ? `${major}: ${minor}` : major;
}

/** Anything thrown below the edge (or by the edge itself) as HiPKI numbers and messages. */
export function hipkiFailure(error: unknown, operation: HipkiOperation): HipkiFailure {
  if (error instanceof HipkiRequestError) {
    return { ret_code: error.retCode, last_error: 0, message: describe(error.retCode, 0), message2: error.message };
  }
  const vocabulary = asCardBridgeError(error);
  const { ret, last } = numbersOf(vocabulary, operation);
  const explanation = vocabulary.hint ? `${vocabulary.message}. ${vocabulary.hint}` : vocabulary.message;
  return { ret_code: ret, last_error: last, message: describe(ret, last), message2: explanation };
}
