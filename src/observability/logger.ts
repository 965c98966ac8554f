import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: one JSON line per event on stdout. Callers never pass tokens, secrets, codes or
 * cookie values; the redaction list is a second line of defence for field names that could carry one.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.STSGATE_LOG_LEVEL ?? 'info',
      base: { service: 'stsgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          '*.token', '*.access_token', '*.subject_token', '*.WebIdentityToken', '*.SecretAccessKey', '*.SessionToken',
          '*.secretAccessKey', '*.sessionToken', '*.accessToken', '*.authorization', '*.cookie', '*.code', '*.client_secret', '*.password',
        ],
        censor: '[redacted]',
      },
    },
    options.destination as Parameters<typeof pino>[1],
  );
}
