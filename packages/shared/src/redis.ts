import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
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

/** A connection to one Redis server or to a Redis Cluster; askq's code works with either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: one server's URL, or a cluster's seed nodes. */
export interface RedisTarget {
  urls: string[];
  cluster: boolean;
}

/** Reads REDIS_URL (one URL, or several separated by commas) and REDIS_CLUSTER. */
export function redisTarget(config: { REDIS_URL: string; REDIS_CLUSTER?: boolean }): RedisTarget {
  const urls = config.REDIS_URL.split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  return { urls, cluster: config.REDIS_CLUSTER === true || urls.length > 1 };
}

// How an API command rides out a cluster failover: this many tries, this far apart.
const FAILOVER_RETRY_MS = 300;
const API_REDIRECTIONS = 17;
const API_FAILOVER_BUDGET_MS = FAILOVER_RETRY_MS * API_REDIRECTIONS;

// Reconnect quickly at first, then every 2 s at most: recovery after an outage takes seconds.
const reconnectDelay = (times: number) => Math.min(50 * 2 ** times, 2_000);

/**
 * Opens an ioredis connection for a role. The caller owns it and must `quit()` it.
 * `enableAutoPipelining` applies to a single server only (see the cluster options).
 */
export function createRedis(
  target: RedisTarget | string,
  role: RedisRole,
  name: string,
  extra: Pick<RedisOptions, 'enableAutoPipelining' | 'commandTimeout'> = {},
): RedisClient {
  const { urls, cluster } =
    typeof target === 'string' ? redisTarget({ REDIS_URL: target }) : target;
  const options: RedisOptions = {
    connectionName: name,
    retryStrategy: reconnectDelay,
    // BullMQ's blocking commands need null; the API fails fast instead.
    maxRetriesPerRequest: role === 'api' ? 1 : null,
    // A hung or partitioned server keeps the connection open and answers nothing: only a time
    // limit on each command turns that into a quick 503 instead of a request that hangs.
    ...(extra.commandTimeout === undefined ? {} : { commandTimeout: extra.commandTimeout }),
  };
  if (!cluster) {
    return new Redis(urls[0]!, { ...options, ...extra, enableOfflineQueue: role !== 'api' });
  }
  const seed = new URL(urls[0]!);
  const clusterOptions: ClusterOptions = {
    // Never auto-pipelined on a cluster: ioredis answers a batch that meets a moved slot with
    // MOVED errors instead of following them (redis/ioredis#2075), so a failover failed requests
    // that the plain client rides out. Found by the failover test.
    enableAutoPipelining: false,
    enableOfflineQueue: role !== 'api',
    clusterRetryStrategy: reconnectDelay,
    // A master that dies closes its connections; ioredis then refreshes the slot map and resends
    // the command, up to maxRedirections times. Workers wait out a whole failover this way
    // (cluster-node-timeout, 15 s by default, plus the election): about 30 s of tries. The API
    // gives up after about 5 s and answers 503 with Retry-After instead of holding requests.
    retryDelayOnFailover: FAILOVER_RETRY_MS,
    retryDelayOnClusterDown: FAILOVER_RETRY_MS,
    maxRedirections: role === 'api' ? API_REDIRECTIONS : 100,
    // Question events use sharded pub/sub (SPUBLISH in the append script): on a cluster each
    // message stays on the shard of its question, and the subscriber keeps a connection per master.
    ...(role === 'subscriber' ? { shardedSubscribers: true } : {}),
    // TLS certificates of managed clusters name the configured host, not the node IPs.
    dnsLookup: (address, callback) => callback(null, address),
    redisOptions: {
      ...options,
      // A command on a cluster may have to follow a failover's redirects (the 5 s above): a
      // shorter time limit would fail what the cluster client is about to ride out.
      ...(options.commandTimeout === undefined
        ? {}
        : { commandTimeout: Math.max(options.commandTimeout, API_FAILOVER_BUDGET_MS) }),
      username: decodeURIComponent(seed.username) || undefined,
      password: decodeURIComponent(seed.password) || undefined,
      ...(seed.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
  const nodes = urls.map((url) => {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  return new Cluster(nodes, clusterOptions);
}

/** Resolves once the connection is ready, rejects after timeoutMs with the last error. */
export async function waitForRedis(redis: RedisClient, timeoutMs: number): Promise<void> {
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

/** A URL (or a comma-separated list of them) with its passwords masked, for logs. */
export function redactUrl(url: string): string {
  return url
    .split(',')
    .map((one) => {
      const parsed = new URL(one.trim());
      if (parsed.password) parsed.password = '***';
      return parsed.toString();
    })
    .join(',');
}

/**
 * Opens a connection whose errors are logged (an unhandled 'error' event would crash the process)
 * and whose close is registered right away, so shutdown releases it in reverse order.
 */
export function openRedis(
  target: RedisTarget | string,
  role: RedisRole,
  name: string,
  owner: { log: Logger; shutdown: Shutdown },
  extra: Pick<RedisOptions, 'enableAutoPipelining' | 'commandTimeout'> = {},
): RedisClient {
  const redis = createRedis(target, role, name, extra);
  redis.on('error', (e: unknown) =>
    owner.log.warn({ err: toError(e), connection: name }, 'redis connection error'),
  );
  owner.shutdown.add(name, () => redis.quit());
  return redis;
}

/**
 * The two connections of an API or worker process: `queues` for BullMQ, and `data` for askq's own
 * keys (records, events, caches, limits), auto-pipelined on a single server (see createRedis).
 * The commands that concurrent questions issue in one tick then go out in one socket write: one
 * write per command was the API's largest CPU cost under load (docs/PERFORMANCE.md). BullMQ keeps
 * its own connection, so its blocking commands and scripts never wait behind askq's.
 */
export function openProcessRedis(
  target: RedisTarget,
  role: 'api' | 'worker',
  owner: { log: Logger; shutdown: Shutdown },
  /** Longest wait for one command's reply, in ms (the API's; workers wait Redis out). */
  commandTimeoutMs?: number,
): { queues: RedisClient; data: RedisClient } {
  const timeout = commandTimeoutMs === undefined ? {} : { commandTimeout: commandTimeoutMs };
  return {
    queues: openRedis(target, role, `askq-${role}-queues`, owner, timeout),
    data: openRedis(target, role, `askq-${role}`, owner, {
      enableAutoPipelining: true,
      ...timeout,
    }),
  };
}

/**
 * Resolves if the server behind `client` runs Redis 7.0 or later, which askq needs: question
 * events travel by sharded pub/sub (SPUBLISH, SSUBSCRIBE). An older server would fail every event
 * append; readiness checks call this so that it is reported, by name, instead.
 */
export async function assertRedisVersion(client: Pick<RedisClient, 'info'>): Promise<void> {
  const info = await client.info('server');
  const version = /^redis_version:(\S+)/m.exec(info)?.[1];
  if (!(Number(version?.split('.')[0]) >= 7)) {
    throw new Error(
      `Redis ${version ?? '(version unknown)'} is too old: askq needs Redis 7.0 or later (sharded pub/sub)`,
    );
  }
}
