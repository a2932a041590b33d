import { createHash } from 'node:crypto';
import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import type { QuestionResult } from './question.js';
import { defineScript } from './redis-script.js';

/** What makes two questions the same question for the cache (SPEC 6). */
export interface CacheIdentity {
  tenant: string;
  collection: string;
  question: string;
  /** Every option that changes the answer. */
  model: string;
  topK: number;
  /** The conversation the question continues ({@link contextOf}); '' or absent when none. */
  context?: string;
}

/** A stored answer, valid while its collection version and the cache generation are current. */
export interface CachedAnswer {
  version: number;
  generation: number;
  storedAt: number;
  result: QuestionResult;
}

/** Per-tenant cache statistics (`GET /v1/cache/stats`). */
export interface CacheStats {
  exact: { hits: number; misses: number; hitRate: number };
  semantic: { hits: number; misses: number; hitRate: number };
  hitRate: number;
  entries: number;
  estimatedSecondsSaved: number;
}

// One character that normalization trims from either end: whitespace or punctuation.
const TRIMMED = /[\s\p{P}]/u;

/**
 * Case, width, spacing and surrounding punctuation do not change a question; everything else
 * (inner punctuation, numbers, word order) may, so it is kept. Linear in the question's length:
 * the ends are trimmed by walking inwards, not by /[\s\p{P}]+$/, which rescans a long inner run
 * of punctuation from every position of it.
 */
export function normalizeQuestion(question: string): string {
  const text = question.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ');
  const chars = [...text];
  let start = 0;
  let end = chars.length;
  while (start < end && TRIMMED.test(chars[start]!)) start++;
  while (end > start && TRIMMED.test(chars[end - 1]!)) end--;
  return start === 0 && end === chars.length ? text : chars.slice(start, end).join('');
}

/** The cache's hash of a question's identity (normalized text, tenant, collection, options). */
export function cacheHash(identity: CacheIdentity): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        identity.tenant,
        identity.collection,
        normalizeQuestion(identity.question),
        identity.model,
        identity.topK,
        // Left out when empty, so keys of questions that stand alone stay what they were.
        ...(identity.context ? [identity.context] : []),
      ]),
    )
    .digest('hex');
}

/** The state a cached answer is checked against: the collection's version, the cache generation. */
export interface CacheEpoch {
  version: number;
  generation: number;
}

/** The Redis side of the answer cache: the exact layer, in-flight questions, statistics. */
export interface AnswerCache {
  /** One round trip: the current epoch and, if any, a stored answer still valid in it. */
  lookup(identity: CacheIdentity): Promise<{ epoch: CacheEpoch; hit: CachedAnswer | undefined }>;
  /** Stores a validated answer for its epoch, with the TTL. */
  store(identity: CacheIdentity, epoch: CacheEpoch, result: QuestionResult): Promise<void>;
  /** The key under which the question answering `identity` in `epoch` is registered. */
  inFlightKey(identity: CacheIdentity, epoch: CacheEpoch): string;
  /** The question registered under `key`, if any. */
  inFlightOwner(key: string): Promise<string | null>;
  /**
   * Registers a question under `key` unless another already is; returns the registered one (this
   * question when it won). The registration expires after ttlMs.
   */
  claimInFlight(key: string, questionId: string, ttlMs: number): Promise<string>;
  /** Replaces a registration that has gone stale, if it is still `staleOwner`'s. */
  replaceInFlight(
    key: string,
    staleOwner: string,
    questionId: string,
    ttlMs: number,
  ): Promise<void>;
  /** Ends a registration, if it is still this question's. */
  releaseInFlight(key: string, questionId: string): Promise<void>;
  /** Counts a lookup; a hit also adds the time the original answer took. */
  recordLookup(
    tenant: string,
    layer: 'exact' | 'semantic',
    hit: CachedAnswer | undefined,
  ): Promise<void>;
  stats(tenant: string): Promise<CacheStats>;
  /** Retires every cached answer of every tenant at once; returns how many entries there were. */
  clear(): Promise<number>;
}

const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const REPLACE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return false
`;

/** Builds the answer cache over a connection the caller owns. */
export function createAnswerCache(
  redis: RedisClient,
  keys: Keys,
  options: { ttlSeconds: number },
): AnswerCache {
  const releaseInFlight = defineScript<[id: string], number>(redis, 'askqReleaseInFlight', {
    keys: 1,
    lua: RELEASE_LUA,
  });
  const replaceInFlight = defineScript<[stale: string, id: string, ttlMs: number], unknown>(
    redis,
    'askqReplaceInFlight',
    { keys: 1, lua: REPLACE_LUA },
  );

  const epochOf = (generation: string | null, version: string | null): CacheEpoch => ({
    generation: Number(generation ?? 0),
    version: Number(version ?? 0),
  });

  const liveEntries = async (tenant: string) => {
    const index = keys.cacheIndex(tenant);
    const [, count] = (await redis
      .multi()
      .zremrangebyscore(index, '-inf', Date.now())
      .zcard(index)
      .exec()) as [[null, number], [null, number]];
    return count[1];
  };

  return {
    async lookup(identity) {
      const hash = cacheHash(identity);
      // Separate commands sent together, not a pipeline: on a cluster the keys live in different
      // slots, and an ioredis cluster pipeline must stay within one.
      const [generation, version, raw] = await Promise.all([
        redis.get(keys.cacheGeneration),
        redis.hget(keys.collection(identity.tenant, identity.collection), 'version'),
        redis.get(keys.cacheEntry(hash)),
      ]);
      const epoch = epochOf(generation, version);
      const entry = raw ? (JSON.parse(raw) as CachedAnswer) : undefined;
      const valid =
        entry && entry.version === epoch.version && entry.generation === epoch.generation;
      return { epoch, hit: valid ? entry : undefined };
    },

    async store(identity, epoch, result) {
      const hash = cacheHash(identity);
      const entry: CachedAnswer = { ...epoch, storedAt: Date.now(), result };
      const index = keys.cacheIndex(identity.tenant);
      const now = Date.now();
      // The index holds live entries only: expired ones go as new ones come, and the index
      // itself expires with its last entry, so it never outgrows the tenant's cached answers.
      await Promise.all([
        redis.set(keys.cacheEntry(hash), JSON.stringify(entry), 'EX', options.ttlSeconds),
        redis
          .multi()
          .zremrangebyscore(index, '-inf', now)
          .zadd(index, now + options.ttlSeconds * 1_000, hash)
          .expire(index, options.ttlSeconds)
          .exec(),
        redis.sadd(keys.cacheTenants, identity.tenant),
      ]);
    },

    inFlightKey(identity, epoch) {
      return keys.inFlight(cacheHash(identity), epoch.version, epoch.generation);
    },

    inFlightOwner(key) {
      return redis.get(key);
    },

    async claimInFlight(key, questionId, ttlMs) {
      const set = await redis.set(key, questionId, 'PX', ttlMs, 'NX');
      if (set === 'OK') return questionId;
      const owner = await redis.get(key);
      // It was released between the two calls: try again.
      return owner ?? this.claimInFlight(key, questionId, ttlMs);
    },

    async replaceInFlight(key, staleOwner, questionId, ttlMs) {
      await replaceInFlight([key], [staleOwner, questionId, ttlMs]);
    },

    async releaseInFlight(key, questionId) {
      await releaseInFlight([key], [questionId]);
    },

    async recordLookup(tenant, layer, hit) {
      const stats = keys.cacheStats(tenant);
      const pipeline = redis.pipeline().hincrby(stats, `${layer}:${hit ? 'hits' : 'misses'}`, 1);
      if (hit) pipeline.hincrby(stats, 'savedMs', Math.round(hit.result.timings.totalMs));
      await pipeline.exec();
    },

    async stats(tenant) {
      const [hash, entries] = await Promise.all([
        redis.hgetall(keys.cacheStats(tenant)),
        liveEntries(tenant),
      ]);
      const layer = (name: string) => {
        const hits = Number(hash[`${name}:hits`] ?? 0);
        const misses = Number(hash[`${name}:misses`] ?? 0);
        return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses) };
      };
      const exact = layer('exact');
      const semantic = layer('semantic');
      // A question is a miss only if both layers missed; every hit is a question answered.
      const hits = exact.hits + semantic.hits;
      const questions = exact.hits + exact.misses;
      return {
        exact,
        semantic,
        hitRate: questions === 0 ? 0 : hits / Math.max(questions, hits),
        entries,
        estimatedSecondsSaved: Number(hash.savedMs ?? 0) / 1_000,
      };
    },

    async clear() {
      const tenants = await redis.smembers(keys.cacheTenants);
      const counts = await Promise.all(tenants.map(liveEntries));
      // New generation: every stored answer (exact and semantic) stops matching at once; the
      // entries themselves expire with their TTL.
      await Promise.all([
        redis.incr(keys.cacheGeneration),
        ...tenants.map((tenant) => redis.del(keys.cacheIndex(tenant))),
      ]);
      return counts.reduce((a, b) => a + b, 0);
    },
  };
}
