import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from './errors.js';
import type { Shutdown } from './shutdown.js';

/**
 * What a connection is for. The roles differ in how they behave while Redis is down:
 * - `api`: fail fast (no offline queue) so a request answers 503 at once instead of hanging.
 * - `worker`: wait for Redis to return (BullMQ requires `maxRetriesPerRequest: null` for blocking
 *   commands, and a job's writes should resume rather than fail when Redis blips).
 * - `subscriber`: pub/sub; ioredis re-subscribes by itself after a reconnect.
 */
export type RedisRole = 'api' | 'worker' | 'subscriber';

/** Opens an ioredis connection for a role. The caller owns it and must `quit()` it. */
export function createRedis(
  url: string,
  role: RedisRole,
  name: string,
  extra: Pick<RedisOptions, 'enableAutoPipelining'> = {},
): Redis {
  const options: RedisOptions = {
    ...extra,
    connectionName: name,
    // Reconnect quickly at first, then every 2 s at most: recovery after an outage takes seconds.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
  };
  if (role === 'api') {
    options.enableOfflineQueue = false;
    options.maxRetriesPerRequest = 1;
  } else {
    options.maxRetriesPerRequest = null;
  }
  return new Redis(url, options);
}

/** Resolves once the connection is ready, rejects after timeoutMs with the last error. */
export async function waitForRedis(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    let lastError: unknown;
    const onError = (e: unknown) => {
      lastError = e;
    };
    const onReady = () => {
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`, { cause: lastError }));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

/** A URL with its password masked, for logs. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/**
 * Opens a connection whose errors are logged (an unhandled 'error' event would crash the process)
 * and whose close is registered right away, so shutdown releases it in reverse order.
 */
export function openRedis(
  url: string,
  role: RedisRole,
  name: string,
  owner: { log: Logger; shutdown: Shutdown },
  extra: Pick<RedisOptions, 'enableAutoPipelining'> = {},
): Redis {
  const redis = createRedis(url, role, name, extra);
  redis.on('error', (e: unknown) =>
    owner.log.warn({ err: toError(e), connection: name }, 'redis connection error'),
  );
  owner.shutdown.add(name, () => redis.quit());
  return redis;
}
