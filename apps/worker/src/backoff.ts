import { AppError } from '@askq/shared';

/** Settings of the retry delay between attempts of a question. */
export interface BackoffOptions {
  /** Delay before the second attempt; doubles for each one after. */
  baseMs: number;
  /** Upper bound, also of a server's Retry-After. */
  maxMs: number;
  /** Random share taken off each delay, so retries of many questions do not arrive together. */
  jitter: number;
}

/**
 * The delay before the next attempt (BullMQ custom backoff): the model server's Retry-After when
 * it sent one (429/503), else exponential with jitter.
 */
export function createBackoff(options: BackoffOptions, random: () => number = Math.random) {
  return (attemptsMade: number, _type?: string, err?: Error): number => {
    if (err instanceof AppError && err.retryAfterSeconds !== undefined) {
      return Math.min(Math.ceil(err.retryAfterSeconds * 1_000), options.maxMs);
    }
    const full = Math.min(options.baseMs * 2 ** Math.max(0, attemptsMade - 1), options.maxMs);
    return Math.round(full * (1 - options.jitter * random()));
  };
}
