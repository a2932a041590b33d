import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** A JSON logger to stdout with secrets redacted; one per process. */
export function createLogger(options: { level: string; service: string }): Logger {
  return pino({
    level: options.level,
    base: { service: options.service },
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        '*.apiKey',
        '*.LLM_API_KEY',
        '*.EMBEDDINGS_API_KEY',
        '*.ADMIN_API_KEY',
        '*.API_KEYS',
      ],
      censor: '[redacted]',
    },
  });
}
