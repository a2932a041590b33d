import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from './redis.js';
import type { CollectionView } from './documents.js';
import { AppError } from './errors.js';
import type { Keys } from './keys.js';
import { defineScript } from './redis-script.js';

/** The bookkeeping of one collection, kept in Redis beside its vectors in Chroma. */
export interface CollectionState {
  version: number;
  documents: number;
  chunks: number;
  embedder: string;
  dimension: number;
}

/** Reads a collection's hash (HGETALL); undefined when the collection does not exist. */
export function toCollectionState(
  hash: Readonly<Record<string, string | undefined>>,
): CollectionState | undefined {
  if (!hash.embedder) return undefined;
  return {
    version: Number(hash.version ?? 0),
    documents: Number(hash.documents ?? 0),
    chunks: Number(hash.chunks ?? 0),
    embedder: hash.embedder,
    dimension: Number(hash.dimension ?? 0),
  };
}

/** A document's last applied change. */
export interface DocumentState {
  chunks: number;
  seq: number;
  deleted?: boolean;
}

/** Collections of every tenant: versions, counts, embedder, and the order of document changes. */
export interface CollectionRegistry {
  describe(tenant: string, name: string): Promise<CollectionState | undefined>;
  list(tenant: string): Promise<CollectionView[]>;
  /**
   * Records the embedder and dimension on first use and returns the collection's own, so the
   * caller can refuse a mismatch: vectors of different embedders must never share a collection.
   */
  claim(
    tenant: string,
    name: string,
    embedder: { name: string; dimension: number },
  ): Promise<{ embedder: string; dimension: number }>;
  /** Reserves `count` consecutive sequence numbers; changes apply in this order. */
  reserveSeqs(tenant: string, name: string, count: number): Promise<number>;
  document(tenant: string, name: string, id: string): Promise<DocumentState | undefined>;
  /** The states of several documents of a collection, in the order of `ids`. */
  documents(tenant: string, name: string, ids: string[]): Promise<Array<DocumentState | undefined>>;
  /**
   * Records a document's new chunk count (or its deletion, `chunks: null`) unless a later change
   * was applied already; bumps the version when applied.
   */
  applyDocument(
    tenant: string,
    name: string,
    id: string,
    seq: number,
    chunks: number | null,
  ): Promise<{ applied: boolean; version: number }>;
  /** Runs `work` holding the collection's lock, so one collection's changes never interleave. */
  withLock<T>(tenant: string, name: string, work: () => Promise<T>): Promise<T>;
}

const CLAIM_LUA = `
if redis.call('HSETNX', KEYS[1], 'embedder', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'dimension', ARGV[2], 'version', 0, 'documents', 0, 'chunks', 0)
end
return redis.call('HMGET', KEYS[1], 'embedder', 'dimension')
`;

// Counts stay right whatever order retries arrive in: a change older than the applied one is
// refused, and the counters move by the difference from the previous state. A deletion leaves a
// tombstone (its seq refuses an older ingestion of the document that arrives later); tombstones
// older than ARGV[5] ms, when no ingestion can still be pending, are pruned a few per change.
const APPLY_LUA = `
local prev = redis.call('HGET', KEYS[2], ARGV[1])
local prevChunks, prevSeq, prevLive = 0, -1, false
if prev then
  local p = cjson.decode(prev)
  prevChunks = p.chunks
  prevSeq = p.seq
  prevLive = not p.deleted
end
local seq = tonumber(ARGV[2])
if seq < prevSeq then
  return {0, tonumber(redis.call('HGET', KEYS[1], 'version') or '0')}
end
local chunks = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]), 'LIMIT', 0, 32)
for _, doc in ipairs(stale) do
  local entry = redis.call('HGET', KEYS[2], doc)
  if entry and cjson.decode(entry).deleted then redis.call('HDEL', KEYS[2], doc) end
  redis.call('ZREM', KEYS[3], doc)
end
if chunks < 0 then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({chunks = 0, seq = seq, deleted = true}))
  if prevLive then
    redis.call('HINCRBY', KEYS[1], 'documents', -1)
    redis.call('HINCRBY', KEYS[1], 'chunks', -prevChunks)
  end
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({chunks = chunks, seq = seq}))
  if prevLive then
    redis.call('HINCRBY', KEYS[1], 'chunks', chunks - prevChunks)
  else
    redis.call('HINCRBY', KEYS[1], 'documents', 1)
    redis.call('HINCRBY', KEYS[1], 'chunks', chunks)
  end
end
return {1, redis.call('HINCRBY', KEYS[1], 'version', 1)}
`;

/**
 * How long a deleted document's tombstone is kept: longer than an ingestion may wait (its record
 * lives 7 days while pending), so no ingestion older than the deletion can still arrive.
 */
export const TOMBSTONE_KEEP_MS = 8 * 86_400_000;

const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/** Options of the collection lock. */
export interface LockOptions {
  /** How long a lock lives if its holder dies without releasing it. */
  ttlMs: number;
  /** How long to wait for a busy lock before giving up with a retryable error. */
  waitMs: number;
}

/** Builds the registry over a connection the caller owns. */
export function createCollectionRegistry(
  redis: RedisClient,
  keys: Keys,
  lock: LockOptions = { ttlMs: 60_000, waitMs: 30_000 },
): CollectionRegistry {
  const claimScript = defineScript<[embedder: string, dimension: number], [string, string]>(
    redis,
    'askqClaim',
    { keys: 1, lua: CLAIM_LUA },
  );
  // Keys: the collection, its documents, its tombstones.
  const applyScript = defineScript<
    [id: string, seq: number, chunks: number, now: number, keepMs: number],
    [number, number]
  >(redis, 'askqApply', { keys: 3, lua: APPLY_LUA });
  const releaseScript = defineScript<[token: string], number>(redis, 'askqRelease', {
    keys: 1,
    lua: RELEASE_LUA,
  });

  const describe = async (tenant: string, name: string) =>
    toCollectionState(await redis.hgetall(keys.collection(tenant, name)));

  return {
    describe,

    async list(tenant) {
      const names = (await redis.smembers(keys.tenantCollections(tenant))).sort();
      const states = await Promise.all(names.map((name) => describe(tenant, name)));
      return names.flatMap((name, i) => {
        const state = states[i];
        return state ? [{ name, ...state }] : [];
      });
    },

    async claim(tenant, name, embedder) {
      const [claimed, dimension] = await claimScript(
        [keys.collection(tenant, name)],
        [embedder.name, embedder.dimension],
      );
      // A separate key (another cluster slot): listing is best effort, the hash is the truth.
      await redis.sadd(keys.tenantCollections(tenant), name);
      return { embedder: claimed, dimension: Number(dimension) };
    },

    async reserveSeqs(tenant, name, count) {
      const last = await redis.hincrby(keys.collection(tenant, name), 'seq', count);
      return last - count + 1;
    },

    async document(tenant, name, id) {
      const raw = await redis.hget(keys.collectionDocuments(tenant, name), id);
      return raw ? (JSON.parse(raw) as DocumentState) : undefined;
    },

    async documents(tenant, name, ids) {
      if (ids.length === 0) return [];
      const raw = await redis.hmget(keys.collectionDocuments(tenant, name), ...ids);
      return raw.map((one) => (one ? (JSON.parse(one) as DocumentState) : undefined));
    },

    async applyDocument(tenant, name, id, seq, chunks) {
      const [applied, version] = await applyScript(
        [
          keys.collection(tenant, name),
          keys.collectionDocuments(tenant, name),
          keys.collectionTombstones(tenant, name),
        ],
        [id, seq, chunks ?? -1, Date.now(), TOMBSTONE_KEEP_MS],
      );
      return { applied: applied === 1, version: Number(version) };
    },

    async withLock(tenant, name, work) {
      const key = keys.collectionLock(tenant, name);
      const token = randomUUID();
      const deadline = Date.now() + lock.waitMs;
      let delay = 5;
      // Held only while one document's chunks change in Chroma, so waits are short.
      while ((await redis.set(key, token, 'PX', lock.ttlMs, 'NX')) !== 'OK') {
        if (Date.now() > deadline) {
          throw new AppError('UNAVAILABLE', `collection ${name} stayed locked`, {
            retryable: true,
          });
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 200);
      }
      try {
        return await work();
      } finally {
        await releaseScript([key], [token]);
      }
    },
  };
}
