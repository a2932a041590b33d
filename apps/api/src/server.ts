import { once } from 'node:events';
import { Queue } from 'bullmq';
import {
  createAnswerCache,
  createTenantSlots,
  createLeases,
  createQuestionStore,
  createAskqMetrics,
  createCollectionRegistry,
  createEventLog,
  embedderName,
  documentLimits,
  createKeys,
  openRedis,
  chromaProbe,
  redisProbe,
  registerRedisMemoryGauge,
  bindHost,
  openProcessRedis,
  createRegistry,
  createShutdown,
  JOBS,
  questionShards,
  redactUrl,
  redisTarget,
  toError,
  waitForRedis,
  type Logger,
  type IngestJob,
  type QuestionJob,
} from '@askq/shared';
import { createApp } from './app.js';
import { parseApiKeys } from './auth.js';
import { createOpenApiDocument } from './openapi.js';
import { createIdempotency } from './idempotency.js';
import { rateLimit } from './limits.js';
import { createLoadShedder } from './load-shedding.js';
import { createTenantQuotas } from './quotas.js';
import { adminRoutes } from './routes/admin.js';
import type { ApiConfig } from './config.js';
import { createDocumentService } from './document-service.js';
import { createEventHub } from './event-hub.js';
import { createQuestionService } from './question-service.js';
import { createSseRegistry } from './sse.js';

/** A running API process. */
export interface RunningApi {
  readonly port: number;
  /** Graceful stop: end streams, close the server, then Redis; idempotent. */
  stop(reason: string): Promise<boolean>;
}

/** The composition root of the API: config -> clients -> app -> listen, closers registered. */
export async function startApi(config: ApiConfig, log: Logger): Promise<RunningApi> {
  const apiKeys = parseApiKeys(config.API_KEYS);
  const shutdown = createShutdown({ log, timeoutMs: config.SHUTDOWN_TIMEOUT_MS });
  const keys = createKeys(config.REDIS_PREFIX);

  const target = redisTarget(config);
  const { queues: redis, data } = openProcessRedis(
    target,
    'api',
    { log, shutdown },
    config.REDIS_COMMAND_TIMEOUT_MS,
  );
  const subscriber = openRedis(target, 'subscriber', 'askq-api-events', {
    log,
    shutdown,
  });

  // With the offline queue off, BullMQ's add() fails at once while Redis is down: that needs
  // skipWaitingForReady, and skipVersionCheck, whose INFO would otherwise fail once at start-up
  // before the connection is ready and leave the queue unusable.
  const openQueue = <T>(job: (typeof JOBS)[keyof typeof JOBS], prefix = keys.queuePrefix) => {
    const queue = new Queue<T>(job.queue, {
      connection: redis,
      prefix,
      skipWaitingForReady: true,
      skipVersionCheck: true,
      defaultJobOptions: job.options,
    });
    queue.on('error', (e: unknown) =>
      log.warn({ err: toError(e), queue: job.queue, prefix }, 'queue error'),
    );
    shutdown.add(`${job.queue} queue ${prefix}`, () => queue.close());
    return queue;
  };
  const shards = questionShards(keys, config.QUEUE_SHARDS);
  const questionQueues = shards.map((shard) => openQueue<QuestionJob>(JOBS.question, shard.prefix));
  const ingestQueue = openQueue<IngestJob>(JOBS.ingest);

  const registry = createRegistry('api');
  const metrics = createAskqMetrics(registry, [...questionQueues, ingestQueue]);
  registerRedisMemoryGauge(registry, data);
  const dataProbe = redisProbe(data, config.REDIS_MEMORY_WARN_RATIO);
  // A question older than twice its time limit cannot still be running: its slot is stale.
  const slots = createTenantSlots(data, keys, { staleMs: 2 * config.JOB_TIMEOUT_MS });
  const answerCache = createAnswerCache(data, keys, { ttlSeconds: config.CACHE_TTL_SECONDS });
  const events = createEventLog(data, keys, {
    maxLen: config.EVENT_LOG_MAX_LEN,
    ttlSeconds: config.RESULT_TTL_SECONDS,
  });
  const streams = createSseRegistry();
  const shedder = createLoadShedder({
    redis: data,
    keys,
    queues: questionQueues,
    jobTimeoutMs: config.JOB_TIMEOUT_MS,
    share: config.LOAD_SHED_SHARE,
    intervalMs: config.CAPACITY_HEARTBEAT_MS,
    registry,
    log,
  });
  shutdown.add('load shedder', () => shedder.close());
  const quotas = createTenantQuotas({
    leases: createLeases(data),
    keys,
    maxStreams: config.TENANT_MAX_STREAMS,
    maxQueuedIngestions: config.TENANT_MAX_QUEUED_INGESTIONS,
    // Renewed at every heartbeat: a stream whose API process died stops counting after three.
    streamLeaseMs: 3 * config.SSE_HEARTBEAT_MS,
  });
  const app = createApp({
    log,
    questions: createQuestionService({
      redis: data,
      history: { turns: config.CONVERSATION_MAX_TURNS, chars: config.CONVERSATION_MAX_CHARS },
      queues: questionQueues,
      store: createQuestionStore(
        { redis: data, keys, events, slots, cache: answerCache, metrics, log },
        { jobTimeoutMs: config.JOB_TIMEOUT_MS, resultTtlSeconds: config.RESULT_TTL_SECONDS },
      ),
      keys,
      log,
      metrics,
      cache: answerCache,
      // Past this a registration is ignored even if its question never released it.
      inFlightTtlMs: 10 * 60_000,
      slots,
      maxInFlight: config.TENANT_MAX_INFLIGHT,
      shedder,
    }),
    rateLimit: rateLimit({
      redis: data,
      prefix: keys.rateLimitPrefix,
      perMinute: config.RATE_LIMIT_PER_MINUTE,
    }),
    idempotency: createIdempotency(data, keys, log, {
      ttlSeconds: 86_400,
      pendingSeconds: config.IDEMPOTENCY_PENDING_SECONDS,
    }),
    cache: answerCache,
    documents: createDocumentService({
      redis: data,
      queue: ingestQueue,
      registry: createCollectionRegistry(data, keys),
      keys,
      log,
      embedder: embedderName(config),
      limits: documentLimits(config),
      storage: {
        maxCollections: config.TENANT_MAX_COLLECTIONS,
        maxDocuments: config.TENANT_MAX_DOCUMENTS,
        maxChunks: config.TENANT_MAX_CHUNKS,
        maxDocumentsPerCollection: config.COLLECTION_MAX_DOCUMENTS,
        maxChunksPerCollection: config.COLLECTION_MAX_CHUNKS,
      },
      quotas,
    }),
    quotas,
    readRateLimit: rateLimit({
      redis: data,
      prefix: `${keys.rateLimitPrefix}:read`,
      perMinute: config.READ_RATE_LIMIT_PER_MINUTE,
      what: 'reads',
    }),
    events,
    hub: createEventHub(subscriber, keys, log),
    streams,
    registry,
    metrics,
    apiKeys,
    openapi: createOpenApiDocument({ version: '0.1.0' }),
    admin: adminRoutes({
      queues: [
        ...questionQueues.map((queue, i) => ({ queue, label: shards[i]!.label })),
        { queue: ingestQueue, label: 'ingest' },
      ],
      adminKey: config.ADMIN_API_KEY,
      authOn: apiKeys.length > 0,
    }),
    adminKey: config.ADMIN_API_KEY,
    readiness: {
      redis: async () => {
        const [, warning] = await Promise.all([redis.ping(), dataProbe()]);
        return warning;
      },
      chroma: chromaProbe(config.CHROMA_URL),
    },
    readyTimeoutMs: config.READY_TIMEOUT_MS,
    sse: {
      heartbeatMs: config.SSE_HEARTBEAT_MS,
      maxBufferBytes: config.SSE_MAX_BUFFER_BYTES,
      retryMs: 2_000,
    },
    bodyLimits: { question: '64kb', documents: '1mb', conversation: '1mb' },
  });

  // Give Redis a moment so the first probes do not fail; the API still starts if it stays down
  // (requests then answer 503 and the connection keeps retrying in the background).
  await Promise.all([waitForRedis(redis, 5_000), waitForRedis(data, 5_000)]).catch((e: unknown) =>
    log.warn({ err: toError(e) }, 'redis not reachable yet; starting anyway'),
  );
  const bind = bindHost(config);
  const server = app.listen(config.PORT, bind.host);
  await once(server, 'listening');
  // Streams end before server.close(), which would otherwise wait for them; clients resume elsewhere.
  shutdown.add('http server', async () => {
    streams.closeAll();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  if (apiKeys.length === 0) {
    log.warn('auth is off: API_KEYS is unset, every request is tenant "default"');
    if (bind.defaulted) {
      log.info(
        { host: bind.host },
        'listening on this machine only; to serve others set API_KEYS (then HOST defaults to 0.0.0.0), or HOST=0.0.0.0 to expose it without auth',
      );
    } else if (bind.host !== '127.0.0.1' && bind.host !== '::1' && bind.host !== 'localhost') {
      log.warn(
        { host: bind.host },
        'auth is off and the API is exposed: anyone who reaches it can use it',
      );
    }
  } else {
    log.info({ tenants: [...new Set(apiKeys.map((k) => k.tenant))] }, 'auth is on');
  }
  log.info(
    {
      host: bind.host,
      port,
      redis: redactUrl(config.REDIS_URL),
      chroma: redactUrl(config.CHROMA_URL),
    },
    'api listening',
  );
  return { port, stop: (reason) => shutdown.run(reason) };
}
