import { INGEST_QUEUE, IngestJob } from './documents.js';
import { QUESTIONS_QUEUE, QuestionJob } from './question.js';

/** Name of the worker's custom backoff strategy for questions. */
export const RETRY_BACKOFF = 'llm';

/**
 * The job catalog: each queue's payload schema and retry settings, shared by the producer (API)
 * and the consumer (worker) so that both agree. Plain data: BullMQ's `JobsOptions` accepts it.
 */
export const JOBS = {
  question: {
    queue: QUESTIONS_QUEUE,
    name: 'question',
    schema: QuestionJob,
    options: {
      // SPEC 5: three attempts for retryable failures only. The worker's `llm` backoff strategy
      // is exponential with jitter, or the server's Retry-After when it sent one.
      attempts: 3,
      backoff: { type: RETRY_BACKOFF },
      // The question record in Redis keeps the result; BullMQ's copy is only for Bull Board.
      removeOnComplete: { age: 3_600, count: 1_000 },
      removeOnFail: { age: 86_400, count: 5_000 },
    },
  },
  ingest: {
    queue: INGEST_QUEUE,
    name: 'ingest',
    schema: IngestJob,
    options: {
      // Embedding servers and Chroma have passing faults; applying a document is idempotent.
      attempts: 3,
      backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
      // Payloads hold whole documents: drop them soon, the ingestion record keeps the outcome.
      removeOnComplete: { age: 600, count: 100 },
      removeOnFail: { age: 86_400, count: 1_000 },
    },
  },
} as const;
