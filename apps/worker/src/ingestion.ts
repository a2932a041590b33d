import { UnrecoverableError, type Job } from 'bullmq';
import type { RedisClient } from '@askq/shared';
import {
  AppError,
  INGESTION_LEASE_MS,
  TOMBSTONE_KEEP_MS,
  JOBS,
  toError,
  type IngestionStatus,
  type Keys,
  type Leases,
  type Logger,
} from '@askq/shared';
import {
  ContentTooComplexError,
  deleteDocuments,
  upsertDocuments,
  type IngestDeps,
  type IngestProgress,
} from './knowledge/ingest.js';
import { payloadOf } from './job-kit.js';

/**
 * The BullMQ processor of the `ingest` queue: the only code that sees an ingest Job. It records
 * progress in the ingestion's hash, which `GET /v1/ingestions/{id}` reads.
 */
export function createIngestProcessor(deps: {
  redis: RedisClient;
  keys: Keys;
  log: Logger;
  ingest: IngestDeps;
  resultTtlSeconds: number;
  /** The tenant's lease on a queued ingestion (its quota), released when this one ends. */
  leases: Leases;
}) {
  const { redis, keys, log } = deps;

  return async function processIngestion(job: Job): Promise<{ status: IngestionStatus }> {
    // Its lease, if the payload says enough to find it, goes with it.
    const payload = await payloadOf(job, JOBS.ingest.schema, log, 'ingest', async (raw) => {
      const data = raw as { tenant?: unknown; ingestionId?: unknown } | undefined;
      if (typeof data?.tenant === 'string' && typeof data.ingestionId === 'string') {
        await deps.leases.release(keys.tenantIngestions(data.tenant), data.ingestionId);
      }
    });
    const key = keys.ingestion(payload.ingestionId);
    const leaseKey = keys.tenantIngestions(payload.tenant);
    // Renewed as it starts and as it progresses: a long backlog or a long ingestion keeps its
    // place in the tenant's quota; one whose job is lost lets go after INGESTION_LEASE_MS.
    const renewLease = () =>
      deps.leases
        .renew(leaseKey, payload.ingestionId, INGESTION_LEASE_MS)
        .catch((e: unknown) => log.debug({ err: toError(e) }, 'ingestion lease not renewed'));
    const ref = { tenant: payload.tenant, collection: payload.collection };
    const record = async (progress: IngestProgress) => {
      await Promise.all([
        redis.hset(key, {
          documents: JSON.stringify(progress.documents),
          chunksDone: progress.chunksDone,
          chunksTotal: progress.chunksTotal,
        }),
        renewLease(),
      ]);
    };
    const finish = async (
      status: IngestionStatus,
      fields: Record<string, string | number> = {},
    ) => {
      await redis
        .multi()
        .hset(key, { status, finishedAt: Date.now(), ...fields })
        .expire(key, deps.resultTtlSeconds)
        .exec();
      // Its lease expires by itself if this fails: the tenant's quota is only held up meanwhile.
      await deps.leases
        .release(leaseKey, payload.ingestionId)
        .catch((e: unknown) => log.warn({ err: toError(e) }, 'ingestion lease not released'));
      return { status };
    };

    await Promise.all([
      redis.hset(key, { status: 'active', attempts: job.attemptsStarted }),
      renewLease(),
    ]);
    try {
      // The API accepted this for the embedder it was configured with; a worker configured
      // otherwise must not write other vectors into the collection.
      if (payload.embedder !== deps.ingest.embedder.name) {
        throw new AppError(
          'EMBEDDER_MISMATCH',
          `the API expects ${payload.embedder} vectors but this worker embeds with ${deps.ingest.embedder.name}`,
        );
      }
      // A deleted document's tombstone is pruned after TOMBSTONE_KEEP_MS: an upsert queued
      // before the deletion and run after that could bring the document back. So late, it
      // is refused whole (after days of no worker, say), and the client sends it again.
      if (Date.now() - job.timestamp > TOMBSTONE_KEEP_MS) {
        throw new AppError(
          'JOB_TIMEOUT',
          `the ingestion waited over ${TOMBSTONE_KEEP_MS / 86_400_000} days for a worker; send it again`,
        );
      }
      if (payload.op === 'delete') {
        const documents = await deleteDocuments(ref, payload.documents, deps.ingest);
        const chunks = documents.reduce((sum, d) => sum + d.chunks, 0);
        await record({ documents, chunksDone: chunks, chunksTotal: chunks });
        log.info(
          { ingestionId: payload.ingestionId, documents: documents.length },
          'documents deleted',
        );
        return await finish('completed');
      }
      const progress = await upsertDocuments(ref, payload.documents, deps.ingest, async (p) => {
        await record(p);
      });
      const failed = progress.documents.filter((d) => d.error).length;
      log.info(
        {
          ingestionId: payload.ingestionId,
          documents: progress.documents.length,
          failed,
          chunks: progress.chunksDone,
        },
        'ingestion finished',
      );
      // Completed when anything was ingested; each document's own error is in its entry.
      return await finish(failed === progress.documents.length ? 'failed' : 'completed');
    } catch (e) {
      const error =
        e instanceof AppError
          ? e
          : new AppError('INTERNAL', 'ingestion failed unexpectedly', { cause: toError(e) });
      if (error.retryable && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
        log.warn(
          { ingestionId: payload.ingestionId, err: error },
          'ingestion attempt failed; retrying',
        );
        throw error;
      }
      log.warn({ ingestionId: payload.ingestionId, err: error }, 'ingestion failed');
      // Which document was too complex, and what was stored before it.
      if (e instanceof ContentTooComplexError) await record(e.progress);
      await finish('failed', {
        error: JSON.stringify({ code: error.code, message: error.message }),
      });
      throw new UnrecoverableError(error.message);
    }
  };
}
