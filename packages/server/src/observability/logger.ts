import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/settings.js';

export type { Logger };

/**
 * Paths pino replaces with "[redacted]" wherever they appear in a log line: credentials in
 * request headers and any field that carries a token, key or password.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'keyPem',
  '*.keyPem',
  'privateKey',
  '*.privateKey',
  'secret',
  '*.secret',
];

export function createLogger(level: Config['log']['level'], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'fleetward' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
