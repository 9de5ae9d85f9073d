import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Paths pino blanks out before a line is written: PINs, the window secret, what is signed,
 * signatures and personal data. Audit lines carry none of these by construction; this is the
 * net under everything else (request logs, error objects).
 */
export const REDACTED_PATHS = [
  'pin',
  '*.pin',
  'req.headers["x-cardbridge-secret"]',
  'req.headers.cookie',
  'req.headers.authorization',
  '*.idNumber',
  '*.signature',
  '*.tbs',
  '*.data',
  '*.digest',
  '*.token',
  'body',
  '*.body',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { service: 'cardbridge' } }, destination);
}
