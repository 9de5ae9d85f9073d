export { buildNhiWsApp, NHI_WS_DEFAULT_PORT, type NhiWsAppOptions } from './ws-app.js';
export { buildNhiHttpApp, NHI_HTTP_DEFAULT_PORT, NHI_HTTPS_DEFAULT_PORT, type NhiHttpAppOptions } from './http-app.js';
export { NHI_WS_HOST_NAMES, NHI_HTTP_HOST_NAMES, type NhiListenerOptions } from './common.js';
export { NHI_SERVER_HEADER } from './pages.js';
export { nhiErrorCode, NHI_ERROR_MEANINGS, NHI_OK } from './error-codes.js';
