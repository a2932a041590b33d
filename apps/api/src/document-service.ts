import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '@askq/shared';
import {
  AppError,
  checkDocumentLimits,
  estimatedChunks,
  JOBS,
  toIngestionView,
  type DocumentLimits,
  type CollectionRegistry,
  type CollectionView,
  type IngestJob,
  type IngestionView,
  type IngestRequest,
  type Keys,
  type Logger,
} from '@askq/shared';
import { unavailable } from './unavailable.js';
import type { TenantQuotas } from './quotas.js';

/** What one tenant may store, all its collections together, and in any one of them. */
export interface StorageQuota {
  maxCollections: number;
  maxDocuments: number;
  maxChunks: number;
  /** One collection is one Chroma index (and one lexical index): bounded on its own. */
  maxDocumentsPerCollection: number;
  maxChunksPerCollection: number;
}

/** What the API does with documents and collections, free of HTTP. */
export interface DocumentService {
  ingest(
    tenant: string,
    request: IngestRequest,
  ): Promise<{ ingestionId: string; documents: number }>;
  ingestion(tenant: string, id: string): Promise<IngestionView>;
  remove(
    tenant: string,
    collection: string,
    documentId: string,
  ): Promise<{ ingestionId: string; documents: number }>;
  collections(tenant: string): Promise<CollectionView[]>;
}

const INGESTION_ID = /^[\w-]{1,64}$/;
// Unfinished ingestions expire too, in case a job is lost with its queue; the worker shortens it.
const PENDING_TTL_SECONDS = 7 * 86_400;

/** Builds the document service over clients the caller owns. */
export function createDocumentService(deps: {
  redis: RedisClient;
  queue: Queue<IngestJob>;
  registry: CollectionRegistry;
  keys: Keys;
  log: Logger;
  /** Name of the embedder this deployment uses (`hash` or `openai:<model>`). */
  embedder: string;
  limits: DocumentLimits;
  /** What one tenant may store (SPEC 7), all its collections together. */
  storage: StorageQuota;
  quotas: TenantQuotas;
}): DocumentService {
  const { redis, queue, registry, keys, log, embedder } = deps;

  /**
   * Refuses documents that would take the tenant past its collections, documents or chunks.
   * Checked against the registry's counts before the job is queued; concurrent requests of one
   * tenant may each pass, so a quota can be overshot by at most what they carry.
   */
  const refuseOverQuota = async (tenant: string, request: IngestRequest) => {
    const ids = request.documents.flatMap((doc) => (doc.id ? [doc.id] : []));
    const [collections, known] = await Promise.all([
      registry.list(tenant),
      registry.documents(tenant, request.collection, ids),
    ]).catch(unavailable);
    const exceeded = (what: string, max: number, variable: string) =>
      new AppError('QUOTA_EXCEEDED', `a tenant may store at most ${max} ${what} (${variable})`);
    const target = collections.find((c) => c.name === request.collection);
    if (
      !collections.some((c) => c.name === request.collection) &&
      collections.length >= deps.storage.maxCollections
    ) {
      throw exceeded('collections', deps.storage.maxCollections, 'TENANT_MAX_COLLECTIONS');
    }
    const states = new Map(ids.map((id, i) => [id, known[i]]));
    let documents = 0;
    let chunks = 0;
    for (const collection of collections) {
      documents += collection.documents;
      chunks += collection.chunks;
    }
    let inCollection = { documents: target?.documents ?? 0, chunks: target?.chunks ?? 0 };
    for (const doc of request.documents) {
      const before = doc.id === undefined ? undefined : states.get(doc.id);
      // A document sent again replaces its chunks: only the difference counts.
      const added = !before || before.deleted ? 1 : 0;
      const grown = estimatedChunks(doc.text.length, deps.limits) - (added ? 0 : before!.chunks);
      documents += added;
      chunks += grown;
      inCollection = {
        documents: inCollection.documents + added,
        chunks: inCollection.chunks + grown,
      };
    }
    const perCollection = (what: string, max: number, variable: string) =>
      new AppError(
        'QUOTA_EXCEEDED',
        `collection ${request.collection} may hold at most ${max} ${what} (${variable})`,
      );
    if (inCollection.documents > deps.storage.maxDocumentsPerCollection) {
      const max = deps.storage.maxDocumentsPerCollection;
      throw perCollection('documents', max, 'COLLECTION_MAX_DOCUMENTS');
    }
    if (inCollection.chunks > deps.storage.maxChunksPerCollection) {
      throw perCollection('chunks', deps.storage.maxChunksPerCollection, 'COLLECTION_MAX_CHUNKS');
    }
    if (documents > deps.storage.maxDocuments) {
      throw exceeded('documents', deps.storage.maxDocuments, 'TENANT_MAX_DOCUMENTS');
    }
    if (chunks > deps.storage.maxChunks) {
      throw exceeded('chunks', deps.storage.maxChunks, 'TENANT_MAX_CHUNKS');
    }
  };

  const refuseOtherEmbedder = async (tenant: string, collection: string) => {
    const state = await registry.describe(tenant, collection).catch(unavailable);
    if (state && state.embedder !== embedder) {
      throw new AppError(
        'CONFLICT',
        `collection ${collection} holds ${state.embedder} vectors; this deployment embeds with ${embedder}. Use another collection.`,
      );
    }
  };

  const enqueue = async (job: IngestJob, tenant: string, documentIds: string[]) => {
    // Released by the worker when the ingestion ends; here, if it is never queued.
    const lease = await deps.quotas.queueIngestion(tenant, job.ingestionId).catch(unavailable);
    const key = keys.ingestion(job.ingestionId);
    await redis
      .multi()
      .hset(key, {
        tenant,
        collection: job.collection,
        operation: job.op,
        status: 'queued',
        createdAt: Date.now(),
        documents: JSON.stringify(documentIds.map((id) => ({ id, chunks: 0 }))),
        chunksDone: 0,
        chunksTotal: 0,
      })
      .expire(key, PENDING_TTL_SECONDS)
      .exec()
      .catch(async (e: unknown) => {
        await lease.release().catch(() => undefined);
        unavailable(e);
      });
    try {
      await queue.add(JOBS.ingest.name, job, { jobId: job.ingestionId });
    } catch (e) {
      await Promise.all([redis.del(key), lease.release()]).catch(() => undefined);
      unavailable(e);
    }
    log.info(
      { ingestionId: job.ingestionId, tenant, op: job.op, documents: documentIds.length },
      'ingestion queued',
    );
    return { ingestionId: job.ingestionId, documents: documentIds.length };
  };

  return {
    async ingest(tenant, request) {
      checkDocumentLimits(request, deps.limits);
      await Promise.all([
        refuseOtherEmbedder(tenant, request.collection),
        refuseOverQuota(tenant, request),
      ]);
      const first = await registry
        .reserveSeqs(tenant, request.collection, request.documents.length)
        .catch(unavailable);
      const documents = request.documents.map((doc, i) => ({
        ...doc,
        id: doc.id ?? randomUUID(),
        seq: first + i,
      }));
      return enqueue(
        {
          op: 'upsert',
          ingestionId: randomUUID(),
          tenant,
          collection: request.collection,
          embedder,
          documents,
        },
        tenant,
        documents.map((d) => d.id),
      );
    },

    async ingestion(tenant, id) {
      if (!INGESTION_ID.test(id)) throw notFound('ingestion', id);
      const hash = await redis.hgetall(keys.ingestion(id)).catch(unavailable);
      const view = toIngestionView(id, hash);
      if (!view || hash.tenant !== tenant) throw notFound('ingestion', id);
      return view;
    },

    async remove(tenant, collection, documentId) {
      const state = await registry.document(tenant, collection, documentId).catch(unavailable);
      if (!state || state.deleted) throw notFound('document', documentId);
      const seq = await registry.reserveSeqs(tenant, collection, 1).catch(unavailable);
      return enqueue(
        {
          op: 'delete',
          ingestionId: randomUUID(),
          tenant,
          collection,
          embedder,
          documents: [{ id: documentId, seq }],
        },
        tenant,
        [documentId],
      );
    },

    collections: (tenant) => registry.list(tenant).catch(unavailable),
  };
}

function notFound(what: string, id: string): AppError {
  return new AppError('NOT_FOUND', `${what} ${id} not found`);
}
