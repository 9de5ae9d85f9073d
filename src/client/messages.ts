/**
 * The one catalogue of run-time messages: Traditional Chinese first, English second, keyed by
 * the error codes of src/errors.ts, the codes only the client raises, and the states the
 * client's detection reports. Used by the trusted windows, the client's errors and hints and
 * the CLI. Data only, no imports: the browser loads it next to client.js (/v1/messages.js).
 * test/unit/messages checks that every code has both texts.
 */

import type { ErrorCode } from '../errors.js';

export interface Message {
  'zh-TW': string;
  en: string;
}

/** Codes the client raises itself, besides the bridge's (NotRunning … BlockedByBrowser are also detection states). */
export type ClientOnlyCode = 'NotRunning' | 'CertificateUntrusted' | 'SiteNotAllowed' | 'BlockedByBrowser' | 'PopupBlocked';
/** What `detect()` tells the page: exactly one of these. */
export type DetectionState = 'NotRunning' | 'CertificateUntrusted' | 'SiteNotAllowed' | 'BlockedByBrowser' | 'Ready';

export const SELF_TEST_URL = 'https://127.0.0.1:39443/';
/** The system unit scripts/install.sh installs (systemd/cardbridge.service). */
export const SERVICE_START_COMMAND = 'sudo systemctl enable --now cardbridge';

export const MESSAGES = {
  NoService: { 'zh-TW': '智慧卡服務（pcscd）沒有執行', en: 'The smart-card service (pcscd) is not running' },
  NoReader: { 'zh-TW': '找不到讀卡機', en: 'No card reader found' },
  NoCard: { 'zh-TW': '讀卡機中沒有卡片', en: 'No card in the reader' },
  WrongCard: { 'zh-TW': '插入的卡片不是這項操作需要的卡片', en: 'The inserted card is not the kind this needs' },
  UnsupportedCard: { 'zh-TW': '不支援這張卡片', en: 'This card is not supported' },
  CardRemoved: { 'zh-TW': '卡片已被取出', en: 'The card was removed' },
  CardError: { 'zh-TW': '卡片回應錯誤', en: 'The card answered with an error' },
  TransportError: { 'zh-TW': '與讀卡機的連線發生問題', en: 'The connection to the reader failed' },
  ProtocolError: { 'zh-TW': '收到無法理解的回應', en: 'An answer that does not follow the protocol' },
  PinIncorrect: { 'zh-TW': 'PIN 碼錯誤', en: 'Wrong PIN' },
  PinBlocked: { 'zh-TW': 'PIN 碼已鎖住，請向發卡單位解鎖', en: 'The PIN is blocked; have the issuer unblock it' },
  PinLength: { 'zh-TW': 'PIN 碼長度不對', en: 'The PIN has the wrong length' },
  LastTryNeedsConfirmation: { 'zh-TW': '只剩最後一次機會：請在 cardbridge 視窗中確認後再輸入 PIN 碼', en: 'One try is left: confirm it in cardbridge\'s window before the PIN is sent' },
  Cancelled: { 'zh-TW': '已取消', en: 'Cancelled' },
  NotAllowedOrigin: { 'zh-TW': '這個網站未被允許使用 cardbridge', en: 'This site is not allowed to use cardbridge' },
  Busy: { 'zh-TW': '卡片正在處理其他工作，請稍候再試', en: 'The card is busy; try again shortly' },
  Timeout: { 'zh-TW': '等候逾時', en: 'Timed out' },
  SharingViolation: { 'zh-TW': '另一個程式正在使用這張卡片', en: 'Another program is using the card' },
  InvalidInput: { 'zh-TW': '輸入的資料不正確', en: 'Invalid input' },
  Unavailable: { 'zh-TW': '這台電腦缺少這項功能需要的元件', en: 'This feature is not available on this computer' },
  SamUnavailable: { 'zh-TW': '無法連線到健保署的驗證服務', en: 'NHI’s verification service cannot be reached' },
  SamError: { 'zh-TW': '健保署的驗證服務拒絕或失敗', en: 'NHI’s verification service refused or failed' },
  RateLimited: { 'zh-TW': '要求太頻繁，請稍候再試', en: 'Too many requests; try again shortly' },
  NotRunning: { 'zh-TW': '這台電腦上的 cardbridge 沒有回應（未安裝或未啟動）', en: 'cardbridge does not answer on this computer (not installed or not running)' },
  CertificateUntrusted: { 'zh-TW': '瀏覽器不信任 cardbridge 的本機憑證', en: 'This browser does not trust cardbridge’s local certificate' },
  SiteNotAllowed: { 'zh-TW': 'cardbridge 正在執行，但這個網站未被允許使用它', en: 'cardbridge is running, but this site is not allowed to use it' },
  BlockedByBrowser: { 'zh-TW': '瀏覽器的「區域網路存取」權限擋住了 cardbridge', en: 'The browser’s local network access permission blocks cardbridge' },
  PopupBlocked: { 'zh-TW': '瀏覽器擋住了 cardbridge 的視窗', en: 'The browser blocked cardbridge’s window' },
  Ready: { 'zh-TW': 'cardbridge 已就緒', en: 'cardbridge is ready' },
} as const satisfies Record<string, Message>;

export type MessageKey = keyof typeof MESSAGES;

// A code added to src/errors.ts without a message fails the type check here, naming the code.
type Unwritten = Exclude<ErrorCode | ClientOnlyCode | DetectionState, MessageKey>;
export const EVERY_CODE_HAS_A_MESSAGE: [Unwritten] extends [never] ? true : Unwritten = true;

/** What the user can do, for the codes where there is one thing to do. `{origin}` is the page's origin. */
export const HINTS: Partial<Record<MessageKey, Message>> = {
  NoService: { 'zh-TW': '請執行 sudo systemctl enable --now pcscd.socket', en: 'Run: sudo systemctl enable --now pcscd.socket' },
  NoReader: { 'zh-TW': '請接上讀卡機', en: 'Plug in the card reader' },
  NoCard: { 'zh-TW': '請將卡片插入讀卡機（晶片朝上）', en: 'Insert the card into the reader, chip first' },
  SharingViolation: { 'zh-TW': '請關閉其他讀卡程式後再試', en: 'Close other card programs and try again' },
  NotRunning: {
    'zh-TW': `請安裝 cardbridge，或啟動它：${SERVICE_START_COMMAND}；再開啟 ${SELF_TEST_URL} 檢查`,
    en: `Install cardbridge, or start it: ${SERVICE_START_COMMAND}; then open ${SELF_TEST_URL} to check`,
  },
  CertificateUntrusted: {
    'zh-TW': `請執行 sudo cardbridge certs trust 並重新啟動瀏覽器；再開啟 ${SELF_TEST_URL} 檢查`,
    en: `Run: sudo cardbridge certs trust, and restart the browser; then open ${SELF_TEST_URL} to check`,
  },
  SiteNotAllowed: {
    'zh-TW': '請管理者執行 sudo cardbridge sites allow {origin}',
    en: 'Have an administrator run: sudo cardbridge sites allow {origin}',
  },
  NotAllowedOrigin: {
    'zh-TW': '請管理者執行 sudo cardbridge sites allow {origin}',
    en: 'Have an administrator run: sudo cardbridge sites allow {origin}',
  },
  BlockedByBrowser: {
    'zh-TW': '請在網址列的權限提示中允許此網站存取本機裝置，或請管理者執行 sudo cardbridge browsers allow 並重新啟動瀏覽器',
    en: 'Allow this site to access devices on this computer (the prompt by the address bar), or have an administrator run: sudo cardbridge browsers allow, and restart the browser',
  },
  PopupBlocked: { 'zh-TW': '請從頁面上的按鈕開始，或允許此網站開啟彈出式視窗', en: 'Start from a click on the page, or allow pop-ups for this site' },
};

/** One line, Traditional Chinese first: "讀卡機中沒有卡片 (No card in the reader)". Unknown keys give undefined. */
export function messageText(key: string): string | undefined {
  const m = (MESSAGES as Record<string, Message>)[key];
  return m ? `${m['zh-TW']} (${m.en})` : undefined;
}

/** The hint for `key` in both languages, `{origin}` filled in, or undefined. */
export function hintText(key: string, origin?: string): string | undefined {
  const h = (HINTS as Record<string, Message | undefined>)[key];
  return h ? `${h['zh-TW']}。${h.en}.`.replaceAll('{origin}', origin || '<本網站 this site>') : undefined;
}
