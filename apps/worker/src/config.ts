import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { BaseConfig } from '@askq/shared';

/** Settings of a worker process. */
export const WorkerConfig = BaseConfig.extend({
  /** Questions one worker runs at once. */
  WORKER_CONCURRENCY: z.coerce.number().int().positive().default(8),
  /** Only whether it is set matters here: without it (auth off) metrics bind 127.0.0.1. */
  API_KEYS: z.string().optional(),
  /** Port of the worker's `/metrics` and `/healthz`; 0 picks a free one. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65_535).default(9464),
  /** OpenAI-compatible base URL including `/v1`; unset means the offline `extractive` provider. */
  LLM_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Required by the SDK even for local servers that ignore it. */
  LLM_API_KEY: z.string().default('not-needed'),
  LLM_MODEL_FAST: z.string().min(1).default('gpt-4o-mini'),
  LLM_MODEL_SMART: z.string().min(1).default('gpt-4o'),
  /** Whole answer, per attempt, in milliseconds (the SDK timeout does not bound a stream). */
  LLM_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  /** Longest silence between two streamed chunks, in milliseconds. */
  LLM_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(20_000),
  /** Pause between the offline `extractive` provider's tokens, in milliseconds (0: as fast as it can). */
  EXTRACTIVE_TOKEN_DELAY_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  /** A job's lock, renewed every half of it while the job runs, in milliseconds. */
  WORKER_LOCK_MS: z.coerce.number().int().min(500).default(10_000),
  /** How often workers look for jobs whose lock lapsed (a crashed worker's), in milliseconds. */
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(200).default(5_000),
  /**
   * How often one worker sweeps the open questions, in milliseconds: it ends those past their
   * deadline (JOB_TIMEOUT) and those whose job finished or is gone while they are open (LOST).
   */
  ORPHAN_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  /**
   * How old an open question must be (from its record's creation) before the sweep takes a
   * missing job for a lost one, in milliseconds. The API writes the record one round trip before
   * the job; on a Redis Cluster that round trip may ride out a failover's redirects. Generous:
   * a question the sweep misses here still ends at its deadline.
   */
  LOST_JOB_GRACE_MS: z.coerce.number().int().min(0).default(60_000),
  /** Delay before a question's second attempt, doubling after, in milliseconds (with jitter). */
  RETRY_BASE_DELAY_MS: z.coerce.number().int().min(0).default(1_000),
  /** Longest delay between attempts, also the cap of a server's Retry-After, in milliseconds. */
  RETRY_MAX_DELAY_MS: z.coerce.number().int().min(0).default(60_000),
  /** Token events are flushed at this interval in milliseconds, or at TOKEN_BATCH_MAX tokens. */
  TOKEN_BATCH_MS: z.coerce.number().int().min(0).default(50),
  TOKEN_BATCH_MAX: z.coerce.number().int().positive().default(32),
  /**
   * Longest answer, in characters: a model that goes on is stopped there and the answer fails the
   * length check (and escalates once, like any failed check).
   */
  MAX_ANSWER_CHARS: z.coerce.number().int().positive().default(8_000),
  /**
   * `max_tokens` of every LLM request; unset: MAX_ANSWER_CHARS / 3 (an English token is about four
   * characters). An answer the model ends at it fails the length check ("cut off").
   */
  LLM_MAX_TOKENS: z.coerce.number().int().positive().optional(),
  /** Share of the answer's content words found in the sources needed to pass (0..1). */
  GROUNDING_THRESHOLD: z.coerce.number().min(0).max(1).default(0.5),
  /**
   * Cosine similarity a past question needs to answer a new one from the semantic cache, besides
   * passing its guard (the same meaning-bearing words); default by embedder (see guards.ts).
   */
  SEMANTIC_CACHE_THRESHOLD: z.coerce.number().min(0).max(1).optional(),
  /**
   * The lexical (BM25) ranking's share of hybrid retrieval's fused score, 0..1; the vector ranking
   * has the rest. 0 turns the lexical side off (vectors only).
   */
  RETRIEVAL_LEXICAL_WEIGHT: z.coerce.number().min(0).max(1).default(0.4),
  /** Best retrieval similarity below which `auto` picks the smart model; default by embedder. */
  ROUTE_WEAK_SCORE: z.coerce.number().min(0).max(1).optional(),
  /** `strict` fails a question whose answer fails validation; `lenient` completes it flagged. */
  VALIDATION_MODE: z.enum(['lenient', 'strict']).default('lenient'),
  /** Ingestions one worker runs at once. */
  INGEST_CONCURRENCY: z.coerce.number().int().positive().default(2),
  /** Texts per `/v1/embeddings` request. */
  EMBEDDINGS_BATCH_SIZE: z.coerce.number().int().min(1).max(2_048).default(64),
  /** Per embeddings request, in milliseconds. */
  EMBEDDINGS_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
  /** Retries of one embeddings request (429, 5xx, network), before the job's own attempts. */
  EMBEDDINGS_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** Timeout of each Chroma call, in milliseconds (a hung server would otherwise hang the job). */
  CHROMA_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Most concurrent queries (or semantic-cache stores) on one collection sent to Chroma as one request; 1 turns batching off. */
  CHROMA_BATCH_MAX: z.coerce.number().int().min(1).max(256).default(32),
  /** Most chunks written to Chroma in one request. */
  CHROMA_WRITE_BATCH: z.coerce.number().int().min(1).max(5_000).default(100),
  /**
   * Threads for the CPU-bound work on questions' text (built-in embedding, the extractive answer,
   * validation), so the event loop that renews job locks never waits for it. Default: the cores
   * this process may use, at most 4 (Node 20 does not see a container's CPU quota: set it there).
   */
  CONTENT_THREADS: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(() => Math.min(4, availableParallelism())),
  /** Threads that chunk and embed documents: apart, so a large ingestion never delays questions. */
  INGEST_THREADS: z.coerce.number().int().min(1).max(64).default(1),
  /**
   * Longest one task on user content may run on its thread, in milliseconds; past it the task is
   * ended and its question or ingestion fails with CONTENT_TOO_COMPLEX (not retried).
   */
  CONTENT_TASK_BUDGET_MS: z.coerce.number().int().min(1).default(10_000),
  /** Heap limit of each content thread, in MB; content that needs more is too complex. */
  CONTENT_THREAD_MEMORY_MB: z.coerce.number().int().min(16).default(256),
  /** Folder of .md/.txt files loaded into the `default` collection when it is empty. */
  SAMPLE_CORPUS_DIR: z.string().optional(),
});
export type WorkerConfig = z.infer<typeof WorkerConfig>;
