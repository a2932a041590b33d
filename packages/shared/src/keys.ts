/**
 * Redis key names. Everything about one question carries the hash tag `{<id>}` so that its record,
 * its event log and the scripts that touch both stay in one Redis Cluster slot.
 */
export interface Keys {
  /** Hash with the question's record (status, timings, result). */
  question(id: string): string;
  /** Stream holding the question's event log; entry ids are the SSE event ids. */
  events(id: string): string;
  /** Pub/sub channel announcing each appended event to live readers. */
  eventsChannel(id: string): string;
  /** Hash with an ingestion's progress. */
  ingestion(id: string): string;
  /** Hash with a collection's version, counts and embedder. */
  collection(tenant: string, name: string): string;
  /** Hash of a collection's documents: id -> JSON { chunks, seq, deleted? }. */
  collectionDocuments(tenant: string, name: string): string;
  /** Lock held while a document's chunks change, so changes to one collection apply in order. */
  collectionLock(tenant: string, name: string): string;
  /** Sorted set of a collection's deleted documents by deletion time, to prune their tombstones. */
  collectionTombstones(tenant: string, name: string): string;
  /**
   * A collection's lexical index, in the collection's slot: `postings` (sorted set of
   * "term impact chunkId" members, ordered by term then impact), `chunks` (hash: chunk id ->
   * its length and terms, to remove them) and `stats` (hash: chunk count and total length).
   */
  lexical(tenant: string, name: string): { postings: string; chunks: string; stats: string };
  /** Set of a tenant's collection names. */
  tenantCollections(tenant: string): string;
  /** A cached answer, by the hash of its question's identity (spread over the cluster by it). */
  cacheEntry(hash: string): string;
  /**
   * Semantic-cache entries of a tenant's collection stored and not yet in Chroma (written
   * before `completed`, removed once Chroma has them; the hash expires 30 s after its last write).
   */
  semanticRecent(tenant: string, collection: string): string;
  /** Sorted set of a tenant's cache entries by expiry, to count them. */
  cacheIndex(tenant: string): string;
  /** Hash of a tenant's cache statistics. */
  cacheStats(tenant: string): string;
  /** Set of tenants that have cache entries. */
  readonly cacheTenants: string;
  /** Counter whose increase retires every cached answer (`DELETE /v1/cache`). */
  readonly cacheGeneration: string;
  /** The question currently answering an identity in an epoch (in-flight coalescing). */
  inFlight(hash: string, version: number, generation: number): string;
  /** Sorted set of a tenant's queued and running questions (the in-flight limit). */
  tenantSlots(tenant: string): string;
  /** Leases of a tenant's open event streams, by expiry (the streams quota). */
  tenantStreams(tenant: string): string;
  /** Leases of a tenant's queued and running ingestions, by expiry (the ingestions quota). */
  tenantIngestions(tenant: string): string;
  /** Rate-limiter keys (rate-limiter-flexible adds the tenant). */
  readonly rateLimitPrefix: string;
  /** An Idempotency-Key's stored request and response. */
  idempotency(tenant: string, keyHash: string): string;
  /** Pub/sub channel on which the API asks workers to cancel an active question. */
  readonly cancelChannel: string;
  /** Taken by the one worker that sweeps the questions in an interval. */
  readonly questionSweepLock: string;
  /**
   * Sorted set of questions by deadline (epoch ms), from their creation until the sweep has read
   * them finished: the sweep ends the open ones past it, or whose job is gone.
   */
  readonly questionDeadlines: string;
  /** Hash of live workers' heartbeats: worker id -> JSON { slots, serviceMs, at } (load shedding). */
  readonly workerCapacity: string;
  /** BullMQ `prefix`; a hash tag keeps each queue's keys in one slot (BullMQ on Redis Cluster). */
  readonly queuePrefix: string;
  /** BullMQ `prefix` of question queue shard n > 0: its own hash tag, so its own slot. */
  shardQueuePrefix(shard: number): string;
}

/** Key names under a prefix such as `askq`. */
export function createKeys(prefix: string): Keys {
  return {
    question: (id) => `${prefix}:q:{${id}}`,
    events: (id) => `${prefix}:q:{${id}}:events`,
    eventsChannel: (id) => `${prefix}:q:{${id}}:ch`,
    ingestion: (id) => `${prefix}:ing:{${id}}`,
    // Tenant and collection names hold no '/', so the tag is unambiguous.
    collection: (tenant, name) => `${prefix}:c:{${tenant}/${name}}`,
    collectionDocuments: (tenant, name) => `${prefix}:c:{${tenant}/${name}}:docs`,
    collectionLock: (tenant, name) => `${prefix}:c:{${tenant}/${name}}:lock`,
    collectionTombstones: (tenant, name) => `${prefix}:c:{${tenant}/${name}}:tombstones`,
    lexical: (tenant, name) => ({
      postings: `${prefix}:lex:{${tenant}/${name}}:postings`,
      chunks: `${prefix}:lex:{${tenant}/${name}}:chunks`,
      stats: `${prefix}:lex:{${tenant}/${name}}:stats`,
    }),
    tenantCollections: (tenant) => `${prefix}:t:${tenant}:collections`,
    cacheEntry: (hash) => `${prefix}:cache:{${hash}}`,
    semanticRecent: (tenant, collection) => `${prefix}:qcache:{${tenant}/${collection}}:recent`,
    cacheIndex: (tenant) => `${prefix}:cache:index:{${tenant}}`,
    cacheStats: (tenant) => `${prefix}:cache:stats:{${tenant}}`,
    cacheTenants: `${prefix}:cache:tenants`,
    cacheGeneration: `${prefix}:cache:generation`,
    inFlight: (hash, version, generation) =>
      `${prefix}:inflight:{${hash}}:${version}:${generation}`,
    tenantSlots: (tenant) => `${prefix}:t:{${tenant}}:slots`,
    tenantStreams: (tenant) => `${prefix}:t:{${tenant}}:streams`,
    tenantIngestions: (tenant) => `${prefix}:t:{${tenant}}:ingestions`,
    rateLimitPrefix: `${prefix}:rl`,
    idempotency: (tenant, keyHash) => `${prefix}:idem:{${tenant}}:${keyHash}`,
    cancelChannel: `${prefix}:cancel`,
    questionSweepLock: `${prefix}:question-sweep`,
    workerCapacity: `${prefix}:workers`,
    questionDeadlines: `${prefix}:deadlines`,
    queuePrefix: `{${prefix}}`,
    shardQueuePrefix: (shard) => `{${prefix}:s${shard}}`,
  };
}
