import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Job, Worker } from 'bullmq';
import {
  createAnswerCache,
  createCapacityReporter,
  createQuestionStore,
  createLeases,
  createTenantSlots,
  createAskqMetrics,
  createCollectionRegistry,
  createEventLog,
  createKeys,
  chromaProbe,
  redisProbe,
  registerRedisMemoryGauge,
  bindHost,
  openProcessRedis,
  openRedis,
  createRegistry,
  createShutdown,
  JOBS,
  questionShards,
  redactUrl,
  redisTarget,
  shardOf,
  splitConcurrency,
  toError,
  type Logger,
} from '@askq/shared';
import { createBackoff } from './backoff.js';
import { createContentPool, type ContentPool } from './content/content-pool.js';
import { defaultSemanticThreshold } from './cache/guards.js';
import { createSemanticCache } from './cache/semantic-cache.js';
import type { WorkerConfig } from './config.js';
import type { Embedder } from './embeddings/embedder.js';
import { createHashEmbedder } from './embeddings/hash-embedder.js';
import { createOpenAiEmbedder } from './embeddings/openai-embedder.js';
import { createIngestProcessor } from './ingestion.js';
import { closeWorker, openWorker } from './job-kit.js';
import { createQuestionSweep } from './question-sweep.js';
import type { IngestDeps } from './knowledge/ingest.js';
import { createChromaStore } from './knowledge/chroma-store.js';
import { createHybridStore } from './knowledge/hybrid-store.js';
import { createLexicalIndex } from './knowledge/lexical-index.js';
import { readDocuments, seedCollection } from './knowledge/seed.js';
import type { ChatModel } from './llm/chat-model.js';
import { createExtractiveModel } from './llm/extractive.js';
import { createOpenAiModel } from './llm/openai-model.js';
import { defaultWeakScore } from './llm/route.js';
import { startMetricsServer } from './metrics-server.js';
import { createQuestionProcessor } from './pipeline.js';

/** A running worker process. */
export interface RunningWorker {
  readonly metricsPort: number;
  /** Stops taking jobs, lets active ones finish (bounded), then closes everything; idempotent. */
  stop(reason: string): Promise<boolean>;
}

/** The composition root of the worker: config -> clients -> processor -> BullMQ worker. */
export async function startWorker(config: WorkerConfig, log: Logger): Promise<RunningWorker> {
  const shutdown = createShutdown({ log, timeoutMs: config.SHUTDOWN_TIMEOUT_MS });
  const keys = createKeys(config.REDIS_PREFIX);

  const target = redisTarget(config);
  const { queues: redis, data } = openProcessRedis(target, 'worker', { log, shutdown });

  const metricsRegistry = createRegistry('worker');
  const metrics = createAskqMetrics(metricsRegistry);
  registerRedisMemoryGauge(metricsRegistry, data);

  // CPU-bound work on user content runs on threads, never on this event loop (it renews job locks
  // and serves /healthz): one pool for questions, one for documents, so a large ingestion never
  // delays a question's work.
  const openPool = (name: string, threads: number, nice = 0): ContentPool => {
    const pool = createContentPool({
      threads,
      nice,
      budgetMs: config.CONTENT_TASK_BUDGET_MS,
      maxMemoryMb: config.CONTENT_THREAD_MEMORY_MB,
      chunkSize: config.CHUNK_SIZE,
      chunkOverlap: config.CHUNK_OVERLAP,
      onTask: (task, outcome, seconds) =>
        metrics.contentTasks.labels(task, outcome).observe(seconds),
    });
    shutdown.add(`${name} content threads`, () => pool.close());
    return pool;
  };
  const questionContent = openPool('question', config.CONTENT_THREADS);
  // At a lower priority: chunking and embedding a large ingestion must not delay questions.
  const ingestContent = openPool('ingest', config.INGEST_THREADS, 10);
  // Fails the start, with the reason, if the threads cannot load their code.
  await Promise.all([questionContent.probe(), ingestContent.probe()]);

  const remoteEmbedder = config.EMBEDDINGS_BASE_URL
    ? createOpenAiEmbedder({
        baseURL: config.EMBEDDINGS_BASE_URL,
        apiKey: config.EMBEDDINGS_API_KEY,
        model: config.EMBEDDINGS_MODEL,
        batchSize: config.EMBEDDINGS_BATCH_SIZE,
        timeoutMs: config.EMBEDDINGS_TIMEOUT_MS,
        maxRetries: config.EMBEDDINGS_MAX_RETRIES,
      })
    : undefined;
  const embedderOn = (pool: ContentPool): Embedder =>
    remoteEmbedder ??
    createHashEmbedder({
      dimension: config.HASH_EMBEDDER_DIMENSION,
      compute: (texts, dimension, signal) => pool.embedHash(texts, dimension, signal),
    });
  const embedder = embedderOn(questionContent);
  const collections = createCollectionRegistry(data, keys);
  const ingestDeps: IngestDeps = {
    store: createHybridStore({
      vectors: createChromaStore({
        url: config.CHROMA_URL,
        prefix: config.REDIS_PREFIX,
        timeoutMs: config.CHROMA_TIMEOUT_MS,
        maxBatch: config.CHROMA_BATCH_MAX,
        writeBatch: config.CHROMA_WRITE_BATCH,
        onBatch: (size) => metrics.vectorBatchSize.labels('query').observe(size),
      }),
      lexical: createLexicalIndex(data, keys),
      lexicalWeight: config.RETRIEVAL_LEXICAL_WEIGHT,
      log,
    }),
    embedder: embedderOn(ingestContent),
    registry: collections,
    chunk: (documentId, text) => ingestContent.chunk(documentId, text),
    maxChunksPerDocument: config.MAX_CHUNKS_PER_DOCUMENT,
    writeBatch: config.CHROMA_WRITE_BATCH,
    log,
  };
  const store = ingestDeps.store;
  const model: ChatModel = config.LLM_BASE_URL
    ? createOpenAiModel({
        baseURL: config.LLM_BASE_URL,
        apiKey: config.LLM_API_KEY,
        models: { fast: config.LLM_MODEL_FAST, smart: config.LLM_MODEL_SMART },
        timeoutMs: config.LLM_TIMEOUT_MS,
        idleTimeoutMs: config.LLM_IDLE_TIMEOUT_MS,
        // About the longest answer in English tokens (four characters each, with room to spare):
        // bounded, and small enough for servers whose context leaves little room for the answer.
        maxTokens: config.LLM_MAX_TOKENS ?? Math.ceil(config.MAX_ANSWER_CHARS / 3),
      })
    : createExtractiveModel({
        tokenDelayMs: config.EXTRACTIVE_TOKEN_DELAY_MS,
        extract: (input, signal) => questionContent.extract(input, signal),
      });

  if (config.SAMPLE_CORPUS_DIR) {
    const written = await seedCollection(
      { tenant: 'default', collection: 'default' },
      await readDocuments(config.SAMPLE_CORPUS_DIR),
      ingestDeps,
    );
    log.info(
      { chunks: written, dir: config.SAMPLE_CORPUS_DIR },
      written > 0 ? 'sample corpus loaded' : 'sample corpus already present',
    );
  }

  const events = createEventLog(data, keys, {
    maxLen: config.EVENT_LOG_MAX_LEN,
    ttlSeconds: config.RESULT_TTL_SECONDS,
  });
  const answerCache = createAnswerCache(data, keys, { ttlSeconds: config.CACHE_TTL_SECONDS });
  const questions = createQuestionStore(
    {
      redis: data,
      keys,
      events,
      slots: createTenantSlots(data, keys, { staleMs: 2 * config.JOB_TIMEOUT_MS }),
      cache: answerCache,
      metrics,
      log,
    },
    { jobTimeoutMs: config.JOB_TIMEOUT_MS, resultTtlSeconds: config.RESULT_TTL_SECONDS },
  );
  // Its Chroma writes finish after their questions' `completed`: let them land before Redis and
  // Chroma clients close (closers run in reverse order).
  const semanticCache = createSemanticCache({
    url: config.CHROMA_URL,
    prefix: config.REDIS_PREFIX,
    redis: data,
    recentKey: (tenant, collection) => keys.semanticRecent(tenant, collection),
    threshold: config.SEMANTIC_CACHE_THRESHOLD ?? defaultSemanticThreshold(embedder.name),
    ttlSeconds: config.CACHE_TTL_SECONDS,
    timeoutMs: config.CHROMA_TIMEOUT_MS,
    maxBatch: config.CHROMA_BATCH_MAX,
    onBatch: (operation, size) => metrics.vectorBatchSize.labels(operation).observe(size),
    log,
  });
  shutdown.add('semantic cache writes', () => semanticCache.flush());

  const processor = createQuestionProcessor({
    redis: data,
    keys,
    events,
    questions,
    cache: answerCache,
    metrics,
    log,
    embedder,
    store,
    semanticCache,
    model,
    content: questionContent,
    settings: {
      tokenBatchMs: config.TOKEN_BATCH_MS,
      tokenBatchMax: config.TOKEN_BATCH_MAX,
      maxAnswerChars: config.MAX_ANSWER_CHARS,
      groundingThreshold: config.GROUNDING_THRESHOLD,
      validationMode: config.VALIDATION_MODE,
      weakScore: config.ROUTE_WEAK_SCORE ?? defaultWeakScore(embedder.name),
      jobTimeoutMs: config.JOB_TIMEOUT_MS,
    },
  });

  // One BullMQ worker per question queue shard, all in this process. Shards fill evenly (ids are
  // hashed), so the process's concurrency is split evenly between them.
  const shards = questionShards(keys, config.QUEUE_SHARDS);
  const concurrency = splitConcurrency(config.WORKER_CONCURRENCY, shards.length);

  // Heartbeats with this worker's slots and how long a question holds one: the API's load
  // shedding reads them from Redis to tell how long a new question would wait.
  const capacity = createCapacityReporter(data, keys, {
    workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    slots: concurrency.reduce((sum, n) => sum + n, 0),
    intervalMs: config.CAPACITY_HEARTBEAT_MS,
    onError: (e) => log.debug({ err: toError(e) }, 'capacity heartbeat failed'),
  });
  // Three parameters, like the processor: BullMQ passes the cancel signal only to those.
  const timedProcessor = async (job: Job, token?: string, signal?: AbortSignal) => {
    const started = performance.now();
    try {
      return await processor(job, token, signal);
    } finally {
      capacity.observe(performance.now() - started);
    }
  };
  // Workers block on Redis (BZPOPMIN on the queue's marker): no polling, pickup in milliseconds.
  // Opened before the BullMQ workers, so that they close after them (shutdown runs in reverse):
  // while active questions drain, a cancel still reaches them and /healthz and /metrics answer.
  const questionWorkers: Worker[] = [];
  const bullWorkers: Worker[] = [];
  let draining = false;
  // Cancels are broadcast: only the process holding a job can abort it (BullMQ cancelJob).
  const cancels = openRedis(target, 'subscriber', 'askq-worker-cancel', {
    log,
    shutdown,
  });
  cancels.on('message', (_channel: string, questionId: string) => {
    const worker = questionWorkers[shardOf(questionId, shards.length)];
    if (worker?.cancelJob(questionId, 'cancelled')) log.info({ questionId }, 'cancelling question');
  });
  await cancels.subscribe(keys.cancelChannel);

  const bind = bindHost(config);
  const metricsServer = await startMetricsServer({
    port: config.WORKER_METRICS_PORT,
    host: bind.host,
    registry: metricsRegistry,
    // Alive while it drains too: an orchestrator must not kill a worker finishing questions.
    healthy: () => draining || bullWorkers.every((w) => w.isRunning()),
    readiness: {
      // Not ready for work while it drains (it takes no more jobs), though alive.
      jobs: () => (draining ? Promise.reject(new Error('draining')) : Promise.resolve()),
      redis: redisProbe(data, config.REDIS_MEMORY_WARN_RATIO),
      chroma: chromaProbe(config.CHROMA_URL),
    },
    readyTimeoutMs: config.READY_TIMEOUT_MS,
  });
  shutdown.add('metrics server', async () => {
    metricsServer.server.closeAllConnections();
    await new Promise<void>((resolve) => metricsServer.server.close(() => resolve()));
  });

  const sweep = createQuestionSweep({
    store: questions,
    redis: data,
    log,
    jobTimeoutMs: config.JOB_TIMEOUT_MS,
    lostJobGraceMs: config.LOST_JOB_GRACE_MS,
    // BullMQ keeps a job in the hash `<prefix>:<queue>:<job id>`; job ids are question ids.
    jobKey: (id) => `${shards[shardOf(id, shards.length)]!.prefix}:${JOBS.question.queue}:${id}`,
  });
  for (const shard of shards) {
    const worker = openWorker(
      JOBS.question.queue,
      timedProcessor,
      {
        connection: redis,
        prefix: shard.prefix,
        concurrency: concurrency[shard.index]!,
        // BullMQ renews a job's lock every lockDuration / 2 while it runs, so a long LLM call never
        // looks stalled; a killed worker's jobs are taken back after the lock lapses and the next
        // stalled check: seconds, not BullMQ's default minute.
        lockDuration: config.WORKER_LOCK_MS,
        stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
        maxStalledCount: 2,
        settings: {
          backoffStrategy: createBackoff({
            baseMs: config.RETRY_BASE_DELAY_MS,
            maxMs: config.RETRY_MAX_DELAY_MS,
            jitter: 0.5,
          }),
        },
      },
      log,
      { shard: shard.index },
    );
    worker.on('failed', (job, e) => void sweep.onFailed(job, e));
    questionWorkers.push(worker);
  }
  // One worker an interval (whoever takes the lock) ends the questions nothing else will: past
  // their deadline, or open without a job. The lock lapses a little before the next round; a
  // round that runs longer than the interval is not started again over itself here.
  let sweeping = false;
  const sweepQuestions = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const interval = config.ORPHAN_SWEEP_INTERVAL_MS;
      const lock = keys.questionSweepLock;
      const won = await data.set(lock, '1', 'PX', Math.round(interval * 0.9), 'NX');
      if (won === 'OK') await sweep.sweep();
    } catch (e) {
      log.warn({ err: toError(e) }, 'question sweep failed');
    } finally {
      sweeping = false;
    }
  };
  const sweepTimer = setInterval(() => void sweepQuestions(), config.ORPHAN_SWEEP_INTERVAL_MS);
  sweepTimer.unref();

  const ingestWorker = openWorker(
    JOBS.ingest.queue,
    createIngestProcessor({
      redis: data,
      keys,
      log,
      ingest: ingestDeps,
      resultTtlSeconds: config.RESULT_TTL_SECONDS,
      leases: createLeases(data),
    }),
    { connection: redis, prefix: keys.queuePrefix, concurrency: config.INGEST_CONCURRENCY },
    log,
  );
  bullWorkers.push(...questionWorkers, ingestWorker);
  // Stop taking jobs and let the active ones finish (bounded): the first step of a shutdown.
  shutdown.add('bullmq workers', () => {
    draining = true;
    return Promise.all(
      bullWorkers.map((w) =>
        closeWorker(
          w,
          {
            drainMs: config.SHUTDOWN_TIMEOUT_MS * 0.7,
            handBackMs: config.SHUTDOWN_TIMEOUT_MS * 0.2,
          },
          log,
        ),
      ),
    );
  });
  // Announced at once, so the API counts this worker's slots from its start; withdrawn first at
  // shutdown, so the API stops counting on them while the worker drains.
  await capacity.beat().catch(() => undefined);
  shutdown.add('capacity heartbeats', () => capacity.stop());
  shutdown.add('question sweep', () => clearInterval(sweepTimer));

  log.info(
    {
      concurrency: concurrency.reduce((sum, n) => sum + n, 0),
      shards: shards.length,
      llm: config.LLM_BASE_URL ? redactUrl(config.LLM_BASE_URL) : 'extractive',
      metricsHost: bind.host,
      metricsPort: metricsServer.port,
    },
    'worker started',
  );
  if (bind.defaulted && bind.host === '127.0.0.1') {
    log.info(
      { host: bind.host },
      'metrics and health answer on this machine only; set HOST=0.0.0.0 for a Prometheus or orchestrator elsewhere',
    );
  }
  return { metricsPort: metricsServer.port, stop: (reason) => shutdown.run(reason) };
}
