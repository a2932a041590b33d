import type { RequestHandler } from 'express';
import type { RedisClient } from '@askq/shared';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '@askq/shared';

/**
 * The per-tenant request rate limit (SPEC 7), a fixed window per minute kept in Redis by
 * rate-limiter-flexible, so every API process draws from the same allowance.
 */
export function rateLimit(options: {
  redis: RedisClient;
  prefix: string;
  perMinute: number;
}): RequestHandler {
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: options.prefix,
    points: options.perMinute,
    duration: 60,
  });
  return (_req, res, next) => {
    limiter.consume(res.locals.tenant as string).then(
      () => next(),
      (rejection: unknown) => {
        if (rejection instanceof RateLimiterRes) {
          const seconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1_000));
          next(
            new AppError(
              'RATE_LIMITED',
              `rate limit of ${options.perMinute} requests per minute reached`,
              {
                retryAfterSeconds: seconds,
              },
            ),
          );
        } else {
          next(
            new AppError('UNAVAILABLE', 'the rate limiter is unavailable, try again shortly', {
              cause: rejection,
              retryAfterSeconds: 1,
            }),
          );
        }
      },
    );
  };
}
