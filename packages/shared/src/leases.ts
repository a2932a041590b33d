import type { RedisClient } from './redis.js';
import { defineScript } from './redis-script.js';

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

/**
 * How long an ingestion's lease lives unless its worker renews it (at the job's start and with
 * its progress): an ingestion lost with its job stops counting against its tenant's quota then.
 */
export const INGESTION_LEASE_MS = 3_600_000;

// Times are Redis's own (TIME), so processes on hosts whose clocks disagree count alike.
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: the set. ARGV: max, id, ttl. The set itself expires with its last lease.
const ACQUIRE_LUA = `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
`;

// KEYS: the set. ARGV: id, ttl. Renews only a lease still held.
const RENEW_LUA = `
${NOW}
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1]) == 1 then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return 1
`;

/** Builds the lease sets over a connection the caller owns. */
export function createLeases(redis: RedisClient): Leases {
  const acquireScript = defineScript<[max: number, id: string, ttlMs: number], number>(
    redis,
    'askqLeaseAcquire',
    { keys: 1, lua: ACQUIRE_LUA },
  );
  const renewScript = defineScript<[id: string, ttlMs: number], number>(redis, 'askqLeaseRenew', {
    keys: 1,
    lua: RENEW_LUA,
  });
  return {
    async acquire(key, id, max, ttlMs) {
      return (await acquireScript([key], [max, id, ttlMs])) === 1;
    },
    async renew(key, id, ttlMs) {
      await renewScript([key], [id, ttlMs]);
    },
    async release(key, id) {
      await redis.zrem(key, id);
    },
  };
}
