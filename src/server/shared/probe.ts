/**
 * The smallest transparent GIF (1×1), served at /v1/probe.gif by the native (https) and HiPKI
 * (http) listeners. The client's detect() loads it as a plain image, which needs no CORS, to
 * tell which of its states applies (see src/client/index.ts).
 */
export const PROBE_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
