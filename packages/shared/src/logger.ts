import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** A JSON logger to stdout (or `destination`) with secrets redacted; one per process. */
export function createLogger(options: {
  level: string;
  service: string;
  destination?: DestinationStream;
}): Logger {
  const settings = {
    level: options.level,
    base: { service: options.service },
    serializers: { err: serializeError },
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
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/**
 * pino's error serializer, minus what an error may carry that must not reach a log: ioredis puts
 * the failed command on its errors, arguments included, and the arguments of a failed AUTH or
 * HELLO are the password (those of other commands are user data). Only the command's name and
 * its number of arguments are kept, at any depth of causes and wrapped errors.
 */
export function serializeError(err: unknown): unknown {
  const serialized: unknown = err instanceof Error ? stdSerializers.err(err) : err;
  return scrub(serialized, 0);
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > 8) return value;
  if (Array.isArray(value)) {
    for (const item of value) scrub(item, depth + 1);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const [key, inner] of Object.entries(record)) {
    if (key === 'command' && typeof inner === 'object' && inner !== null) {
      const { name, args } = inner as { name?: unknown; args?: unknown };
      record.command = { name, args: Array.isArray(args) ? `(${args.length} hidden)` : undefined };
    } else {
      scrub(inner, depth + 1);
    }
  }
  return value;
}
