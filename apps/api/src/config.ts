import { z } from 'zod';
import { BaseConfig } from '@askq/shared';
import { parseApiKeys } from './auth.js';

/** Settings of an API process. */
export const ApiConfig = BaseConfig.extend({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  /** Interval of `: ping` comments on open event streams, in milliseconds. */
  SSE_HEARTBEAT_MS: z.coerce.number().int().positive().default(15_000),
  /** Unsent bytes after which a slow SSE client is dropped (it resumes with Last-Event-ID). */
  SSE_MAX_BUFFER_BYTES: z.coerce.number().int().positive().default(1_048_576),
  /** `tenant:key,tenant:key`; unset: auth off, every request is tenant `default`. */
  API_KEYS: z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      try {
        parseApiKeys(value);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: e instanceof Error ? e.message : String(e) });
      }
    }),
  /** Requests per minute each tenant may make to the routes that create work (shared by all API processes). */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(120),
  /** Questions each tenant may have queued or running at once. */
  TENANT_MAX_INFLIGHT: z.coerce.number().int().positive().default(50),
  /** GET requests per minute each tenant may make (reads, event streams and their reconnects). */
  READ_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(6_000),
  /** Event streams each tenant may have open at once, over all API processes. */
  TENANT_MAX_STREAMS: z.coerce.number().int().positive().default(1_000),
  /** Ingestions (and document deletions) each tenant may have queued or running at once. */
  TENANT_MAX_QUEUED_INGESTIONS: z.coerce.number().int().positive().default(10),
  /** Collections each tenant may have. */
  TENANT_MAX_COLLECTIONS: z.coerce.number().int().positive().default(100),
  /** Documents each tenant may store, all collections together. */
  TENANT_MAX_DOCUMENTS: z.coerce.number().int().positive().default(100_000),
  /** Chunks each tenant may store, all collections together (estimated for new documents). */
  TENANT_MAX_CHUNKS: z.coerce.number().int().positive().default(1_000_000),
  /** Documents one collection may hold (one collection is one Chroma index). */
  COLLECTION_MAX_DOCUMENTS: z.coerce.number().int().positive().default(50_000),
  /** Chunks one collection may hold (estimated from length before the ingestion is queued). */
  COLLECTION_MAX_CHUNKS: z.coerce.number().int().positive().default(500_000),
  /** Earlier turns (a question and its answer are two) a follow-up question carries at most. */
  CONVERSATION_MAX_TURNS: z.coerce.number().int().min(0).max(100).default(10),
  /** Characters of earlier turns a follow-up question carries at most, all turns together. */
  CONVERSATION_MAX_CHARS: z.coerce.number().int().min(0).max(200_000).default(8_000),
  /**
   * Key for admin routes (Bull Board, cache clear). Unset: with auth off they are open (Bull Board
   * read-only); with API_KEYS set they are closed.
   */
  ADMIN_API_KEY: z.string().min(16, 'at least 16 characters').optional(),
  /**
   * A new question is refused (503 OVERLOADED) when its estimated queue wait plus one answer's
   * time exceeds this share of JOB_TIMEOUT_MS; the rest of the time limit absorbs the estimate's
   * error (answers slow down as load rises). 1: refuse only what surely could not finish.
   */
  LOAD_SHED_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  /**
   * Longest the API waits for one Redis reply, in milliseconds: a hung or partitioned Redis then
   * answers requests with 503 in about this long instead of holding them. On a Redis Cluster at
   * least 5.1 s, the time a command may need to follow a failover's redirects.
   */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).default(1_000),
  /**
   * Seconds an Idempotency-Key stays claimed while its request is being accepted: a process that
   * died meanwhile frees the key after this, not after the key's 24 hours.
   */
  IDEMPOTENCY_PENDING_SECONDS: z.coerce.number().int().min(1).default(30),
});
export type ApiConfig = z.infer<typeof ApiConfig>;
