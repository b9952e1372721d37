// The JSON logger of `tagtrail serve` (pino): one line per record on the runtime's standard
// output. Whatever a log call passes, authorization headers, secrets, passwords and tokens come
// out as [REDACTED].
import pino, { type Logger } from 'pino';
import type { Output } from '../runtime.js';

/** Paths pino replaces wherever they occur in a log record. */
const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  '*.authorization',
  '*.headers.authorization',
  'secret',
  '*.secret',
  'webhookSecret',
  '*.webhookSecret',
  'password',
  '*.password',
  'token',
  '*.token',
];

export function createLogger(out: Output, level = 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'tagtrail' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    { write: (line: string) => out.write(line) },
  );
}
