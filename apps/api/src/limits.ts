import type { RequestHandler, Response } from 'express';
import type { RedisClient } from '@askq/shared';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '@askq/shared';

/**
 * The per-tenant request rate limit (SPEC 7), a fixed window per minute kept in Redis by
 * rate-limiter-flexible, so every API process draws from the same allowance.
 *
 * The middleware only starts the decision and leaves it in `res.locals`: a route that first reads
 * (the answer cache) asks Redis both things in one round trip and awaits {@link admission} before
 * it writes anything. Routes with nothing to overlap put {@link awaitAdmission} right after it.
 */
export function rateLimit(options: {
  redis: RedisClient;
  prefix: string;
  perMinute: number;
  /** What is counted, for the refusal's message. */
  what?: string;
}): RequestHandler {
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: options.prefix,
    points: options.perMinute,
    duration: 60,
  });
  const refusal = (rejection: unknown): never => {
    if (rejection instanceof RateLimiterRes) {
      const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1_000));
      throw new AppError(
        'RATE_LIMITED',
        `rate limit of ${options.perMinute} ${options.what ?? 'requests'} per minute reached`,
        { retryAfterSeconds: seconds },
      );
    }
    throw new AppError('UNAVAILABLE', 'the rate limiter is unavailable, try again shortly', {
      cause: rejection,
      retryAfterSeconds: 1,
    });
  };
  return (_req, res, next) => {
    const decision = limiter.consume(res.locals.tenant as string).then(() => undefined, refusal);
    // The route awaits it, perhaps only after it failed for another reason; never unhandled.
    decision.catch(() => undefined);
    res.locals.admission = decision;
    next();
  };
}

/** The rate limit's decision for this request: rejects with 429 when refused; resolved if none ran. */
export function admission(res: Response): Promise<void> {
  return (res.locals.admission as Promise<void> | undefined) ?? Promise.resolve();
}

/** Holds the request until the rate limit has decided, for routes with nothing to do meanwhile. */
export const awaitAdmission: RequestHandler = (_req, res, next) => {
  admission(res).then(() => next(), next);
};

/**
 * Runs `handler` (a body parser) for a request the rate limit may still refuse; if it fails, the
 * refusal is reported instead, so a limited client always hears 429 first.
 */
export function refusalFirst(handler: RequestHandler): RequestHandler {
  return (req, res, next) => {
    void handler(req, res, (err?: unknown) => {
      if (err === undefined) next();
      else admission(res).then(() => next(err), next);
    });
  };
}
