import { AppError } from '@askq/shared';

/** Maps a Redis failure to 503 UNAVAILABLE (the client may try again); AppErrors pass through. */
export function unavailable(e: unknown): never {
  throw e instanceof AppError ? e : toUnavailable(e);
}

/** A Redis failure as the 503 UNAVAILABLE a client sees. */
export function toUnavailable(e: unknown): AppError {
  return new AppError('UNAVAILABLE', 'the queue is unavailable, try again shortly', {
    cause: e,
    retryAfterSeconds: 1,
  });
}
