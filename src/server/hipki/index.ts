/** The HiPKI Local Server drop-in (port 61161): the daemon builds it with buildHipkiApp. */
export { buildHipkiApp, hipkiUrl, HIPKI_DEFAULT_PORT, HIPKI_HOST_NAMES, HIPKI_SERVER_VERSION, type HipkiAppOptions } from './app.js';
export { RET, LAST_ERROR, hipkiFailure, type HipkiFailure } from './ret-codes.js';
