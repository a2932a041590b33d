import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '@askq/shared';
import {
  AppError,
  checkDocumentLimits,
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
import { unavailable } from './question-service.js';

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
}): DocumentService {
  const { redis, queue, registry, keys, log, embedder } = deps;

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
      .catch(unavailable);
    try {
      await queue.add(JOBS.ingest.name, job, { jobId: job.ingestionId });
    } catch (e) {
      await redis.del(key).catch(() => undefined);
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
      await refuseOtherEmbedder(tenant, request.collection);
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
