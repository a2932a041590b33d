import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { defineScript } from './redis-script.js';

/**
 * How many questions each tenant has queued or running (SPEC 7's in-flight limit), shared by every
 * API process and worker: a sorted set of question ids by admission time. The API admits, the
 * worker (or a cancel) releases at the terminal event; entries older than `staleMs` are dropped, so
 * a release lost with a crashed process cannot block a tenant for good.
 */
export interface TenantSlots {
  /** Takes a slot unless the tenant already has `max`; resolves whether it did. */
  admit(tenant: string, questionId: string, max: number): Promise<boolean>;
  release(tenant: string, questionId: string): Promise<void>;
}

const ADMIT_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** Builds the slot counter over a connection the caller owns. */
export function createTenantSlots(
  redis: RedisClient,
  keys: Keys,
  options: { staleMs: number },
): TenantSlots {
  const admit = defineScript<
    [staleBefore: number, max: number, now: number, id: string, ttlMs: number],
    number
  >(redis, 'askqAdmit', { keys: 1, lua: ADMIT_LUA });
  return {
    async admit(tenant, questionId, max) {
      const now = Date.now();
      return (
        (await admit(
          [keys.tenantSlots(tenant)],
          [now - options.staleMs, max, now, questionId, options.staleMs],
        )) === 1
      );
    },
    async release(tenant, questionId) {
      await redis.zrem(keys.tenantSlots(tenant), questionId);
    },
  };
}
