import type { RedisClient } from './redis.js';

/**
 * "At most N at once", shared by every process: a sorted set of lease ids by expiry. A lease is
 * renewed while its holder lives and released when it is done; one whose holder died (a crashed
 * API process, a lost job) expires by itself, so a tenant is never locked out for good. Used for
 * per-tenant quotas on open event streams and on ingestions queued or running (SPEC 7).
 */
export interface Leases {
  /** Takes a lease unless `max` are held; resolves whether it did (an id held already renews). */
  acquire(key: string, id: string, max: number, ttlMs: number): Promise<boolean>;
  renew(key: string, id: string, ttlMs: number): Promise<void>;
  release(key: string, id: string): Promise<void>;
}

// KEYS: the set. ARGV: now, max, expiry, id, ttl. The set itself expires with its last lease.
const ACQUIRE_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[4]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 1
`;

// KEYS: the set. ARGV: expiry, id, ttl. Renews only a lease still held.
const RENEW_LUA = `
if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[2]) == 1 then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return 1
`;

type LeaseScripts = {
  askqLeaseAcquire(
    key: string,
    now: number,
    max: number,
    expiry: number,
    id: string,
    ttl: number,
  ): Promise<number>;
  askqLeaseRenew(key: string, expiry: number, id: string, ttl: number): Promise<number>;
};

/** Builds the lease sets over a connection the caller owns. */
export function createLeases(redis: RedisClient): Leases {
  if (!('askqLeaseAcquire' in redis)) {
    redis.defineCommand('askqLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    redis.defineCommand('askqLeaseRenew', { numberOfKeys: 1, lua: RENEW_LUA });
  }
  const scripts = redis as unknown as LeaseScripts;
  return {
    async acquire(key, id, max, ttlMs) {
      const now = Date.now();
      return (await scripts.askqLeaseAcquire(key, now, max, now + ttlMs, id, ttlMs)) === 1;
    },
    async renew(key, id, ttlMs) {
      await scripts.askqLeaseRenew(key, Date.now() + ttlMs, id, ttlMs);
    },
    async release(key, id) {
      await redis.zrem(key, id);
    },
  };
}
