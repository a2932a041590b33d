import { ChromaNotFoundError, type Collection, type Metadata } from 'chromadb';
import {
  cacheHash,
  normalizeQuestion,
  type CachedAnswer,
  type CacheEpoch,
  type CacheIdentity,
  type Logger,
  type RedisClient,
} from '@askq/shared';
import { createBatcher } from '../knowledge/batcher.js';
import { chromaClientFor, type QueryRow } from '../knowledge/chroma-store.js';
import { createRecentEntries } from './recent-entries.js';
import { sameShape, shapeOf } from './guards.js';

interface StoredEntry {
  collection: Collection;
  id: string;
  vector: number[];
  document: string;
  metadata: Metadata;
}

/** Past questions by meaning: a near-identical question gets the stored answer. */
export interface SemanticCache {
  /** The best stored answer for a question this similar, in this epoch, with the same options. */
  lookup(
    identity: CacheIdentity,
    epoch: CacheEpoch,
    vector: number[],
  ): Promise<CachedAnswer | undefined>;
  /**
   * Stores an answer: a lookup sees it once this resolves; Chroma gets it just after, in the
   * background.
   */
  store(
    identity: CacheIdentity,
    epoch: CacheEpoch,
    vector: number[],
    entry: CachedAnswer,
  ): Promise<void>;
  /** Waits for the Chroma writes still in flight (at shutdown). */
  flush(): Promise<void>;
}

/**
 * The semantic layer (SPEC 6) in Chroma: one collection of past questions per tenant and
 * collection, each with its answer as the document and its epoch and options as metadata, so a
 * lookup filters on them and a collection change (new version) or a cache clear (new generation)
 * retires every entry at once. A hit needs cosine similarity >= `threshold` and to pass the
 * guard: the same meaning-bearing words, numbers and negations (guards.ts). Failures here never fail a question: the cache is an optimisation.
 */
// Entries a lookup reads back from Chroma before it keeps those in scope.
const NEAREST = 10;
// How often a collection's expired entries are looked for, at most (or each TTL, if shorter).
const CLEANUP_INTERVAL_MS = 60_000;

export function createSemanticCache(options: {
  url: string;
  prefix: string;
  /** For the entries stored and not yet in Chroma. */
  redis: RedisClient;
  /** The Redis key of a tenant's collection's recent entries. */
  recentKey: (tenant: string, collection: string) => string;
  threshold: number;
  ttlSeconds: number;
  timeoutMs: number;
  log: Logger;
  /** Most lookups or stores sent to Chroma in one request. */
  maxBatch?: number;
  /** Called with the size of each request to Chroma, as it is sent. */
  onBatch?: (operation: 'cache_lookup' | 'cache_store', size: number) => void;
}): SemanticCache {
  // Each request is aborted after timeoutMs, not left running once the cache gave up on it.
  const client = chromaClientFor(options.url, { timeoutMs: options.timeoutMs });
  const nameOf = (identity: CacheIdentity) =>
    `${options.prefix}.qcache.${identity.tenant}.${identity.collection}`;

  /**
   * What an entry's metadata must hold to answer: the same epoch, options and conversation, as
   * one field, compared after the search; the fields are kept beside it for the cleanup.
   */
  const fieldsOf = (identity: CacheIdentity, epoch: CacheEpoch) => ({
    scope: [
      epoch.version,
      epoch.generation,
      identity.model,
      identity.topK,
      // A follow-up matches only questions asked after the same turns.
      identity.context ?? '',
    ].join('|'),
  });
  const recent = createRecentEntries(options.redis);
  const recentKeyOf = (identity: CacheIdentity) =>
    options.recentKey(identity.tenant, identity.collection);
  // Chroma writes still in flight after their `completed`: awaited at shutdown.
  const writing = new Set<Promise<void>>();

  // Concurrent lookups with the same filter, and concurrent stores, share one Chroma request each
  // (see batcher.ts).
  const lookups = createBatcher<{ collection: Collection; vector: number[] }, QueryRow[]>({
    maxBatch: options.maxBatch ?? 32,
    timeoutMs: options.timeoutMs,
    onBatch: (size) => options.onBatch?.('cache_lookup', size),
    run: async (_key, items) => {
      const [first] = items;
      if (!first) return [];
      const result = await first.collection.query({
        queryEmbeddings: items.map((item) => item.vector),
        // Unfiltered, then filtered here: Chroma filters before it searches, which at 100,000
        // entries made a lookup take 740 ms (a plain query stays at a few ms). Entries of older
        // versions are dropped as the collection moves on, so the nearest are nearly all in scope;
        // a near entry out of scope costs a miss, never a wrong answer.
        nResults: NEAREST,
        include: ['documents', 'metadatas', 'distances'],
      });
      const rows = result.rows();
      return items.map((_, i) => rows[i] ?? []);
    },
  });
  const stores = createBatcher<StoredEntry, undefined>({
    maxBatch: options.maxBatch ?? 32,
    timeoutMs: options.timeoutMs,
    onBatch: (size) => options.onBatch?.('cache_store', size),
    run: async (_key, items) => {
      const [first] = items;
      if (!first) return [];
      // The same question twice in one batch: Chroma refuses repeated ids in one upsert.
      const unique = [...new Map(items.map((item) => [item.id, item])).values()];
      await first.collection.upsert({
        ids: unique.map((item) => item.id),
        embeddings: unique.map((item) => item.vector),
        documents: unique.map((item) => item.document),
        metadatas: unique.map((item) => item.metadata),
      });
      return items.map(() => undefined);
    },
  });

  // Collections found, by name, so a lookup or a store is one HTTP call to Chroma instead of
  // two. One whose call fails is looked up afresh next time.
  const known = new Map<string, Collection>();
  // When, and to which version, each collection was last cleaned up: once per version, and at
  // most once a minute for the entries that expired.
  const cleaned = new Map<string, { version: number; at: number }>();

  /** The entries Chroma has nearest to a vector, nearest first; none when it cannot say. */
  const chromaRows = async (name: string, vector: number[]): Promise<QueryRow[]> => {
    let collection = known.get(name);
    try {
      collection ??= await client.getCollection({ name });
      known.set(name, collection);
    } catch (e) {
      if (!(e instanceof ChromaNotFoundError)) {
        options.log.warn({ err: e }, 'semantic cache lookup failed');
      }
      return [];
    }
    try {
      // One request for all the concurrent lookups of a collection, whatever their scope.
      return await lookups(name, { collection, vector });
    } catch (e) {
      known.delete(name);
      options.log.warn({ err: e }, 'semantic cache lookup failed');
      return [];
    }
  };

  /** The Chroma side of a store; never throws (the cache is an optimisation). */
  const writeToChroma = async (
    name: string,
    epoch: CacheEpoch,
    entry: { id: string; vector: number[]; document: string; metadata: Metadata },
  ): Promise<void> => {
    try {
      const collection =
        known.get(name) ??
        (await client.getOrCreateCollection({
          name,
          embeddingFunction: null,
          configuration: { hnsw: { space: 'cosine' } },
        }));
      known.set(name, collection);
      await stores(name, { collection, ...entry });
      // Entries of older versions can never match again, nor can expired ones: drop them off
      // the answer's path, as the collection moves on and at most once a minute per process.
      const last = cleaned.get(name);
      const now = Date.now();
      const interval = Math.min(CLEANUP_INTERVAL_MS, options.ttlSeconds * 1_000);
      if (!last || last.version !== epoch.version || now - last.at >= interval) {
        cleaned.set(name, { version: epoch.version, at: now });
        const expired = now - options.ttlSeconds * 1_000;
        void collection
          .delete({
            where: { $or: [{ version: { $lt: epoch.version } }, { storedAt: { $lt: expired } }] },
          })
          .catch((e: unknown) => options.log.debug({ err: e }, 'semantic cache cleanup failed'));
      }
    } catch (e) {
      known.delete(name);
      options.log.warn({ err: e }, 'semantic cache store failed');
    }
  };

  return {
    async lookup(identity, epoch, vector) {
      const name = nameOf(identity);
      const fields = fieldsOf(identity, epoch);
      const [stored, written] = await Promise.all([
        chromaRows(name, vector),
        recent.rows(recentKeyOf(identity), fields, vector).catch((e: unknown) => {
          options.log.warn({ err: e }, 'semantic cache lookup of recent entries failed');
          return [];
        }),
      ]);
      const oldest = Date.now() - options.ttlSeconds * 1_000;
      const scoped = stored.filter((row) => row.metadata?.scope === fields.scope);
      const rows = [...written, ...scoped].sort((a, b) => (a.distance ?? 1) - (b.distance ?? 1));
      // The new question is read once, not once per row it is compared with.
      const own = shapeOf(identity.question);
      for (const row of rows) {
        const similarity = 1 - (row.distance ?? 1);
        const asked = typeof row.metadata?.question === 'string' ? row.metadata.question : '';
        if (similarity < options.threshold || !sameShape(own, shapeOf(asked))) continue;
        const entry = JSON.parse(row.document ?? 'null') as CachedAnswer | null;
        if (entry && entry.storedAt >= oldest) return entry;
      }
      return undefined;
    },

    async store(identity, epoch, vector, entry) {
      const name = nameOf(identity);
      const id = `${cacheHash(identity)}.${epoch.version}.${epoch.generation}`;
      const document = JSON.stringify(entry);
      const metadata: Metadata = {
        ...fieldsOf(identity, epoch),
        ...epoch,
        model: identity.model,
        topK: identity.topK,
        context: identity.context ?? '',
        question: normalizeQuestion(identity.question),
        storedAt: entry.storedAt,
      };
      // Visible to lookups before this resolves (and so before `completed`); in Chroma shortly
      // after. If Redis cannot take it, the Chroma write is awaited instead: slower, as sure.
      const inRecent = await recent.add(recentKeyOf(identity), id, vector, document, metadata).then(
        () => true,
        (e: unknown) => {
          options.log.warn({ err: e }, 'semantic cache recent entry not written');
          return false;
        },
      );
      const write = writeToChroma(name, epoch, { id, vector, document, metadata }).then(() =>
        inRecent ? recent.remove(recentKeyOf(identity), id).catch(() => undefined) : undefined,
      );
      if (!inRecent) return write;
      writing.add(write);
      void write.finally(() => writing.delete(write));
    },

    async flush() {
      await Promise.all([...writing]);
    },
  };
}
