import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { AppError, toError, type Validation } from '@askq/shared';
import type { Chunk, ChunkerOptions } from '../knowledge/chunker.js';
import type { ExtractInput } from '../llm/extractive.js';
import type { ValidateInput } from '../stages/validate.js';
import type { ContentWork } from './content-work.js';
import type { PoolData } from './tasks.js';

/** Names of the tasks a pool runs (the exports of tasks.ts). */
export type ContentTask = 'chunk' | 'embedHash' | 'validate' | 'extract' | 'probe';

/** How a task ended: done, past its budget (or out of memory), or failed otherwise. */
export type ContentOutcome = 'ok' | 'too_complex' | 'error';

/** Settings of a {@link createContentPool}. */
export interface ContentPoolOptions extends ChunkerOptions {
  /** Threads of the pool; they stay up while the pool is open. */
  threads: number;
  /** Longest a task may run, from its start on a thread (not its wait in the queue), in ms. */
  budgetMs: number;
  /** Heap limit of each thread: content that needs more ends as too complex. */
  maxMemoryMb: number;
  /**
   * Niceness of the threads (0..19; default 0). Document work runs at 10, so that a large
   * ingestion yields the cores to the questions' work and to the event loop that starts them.
   */
  nice?: number;
  /** Called after every task, for metrics. */
  onTask?: (task: ContentTask, outcome: ContentOutcome, seconds: number) => void;
}

/** {@link ContentWork} on worker threads, each task under a time budget. */
export interface ContentPool extends ContentWork {
  /** The id of the thread that ran a no-op task: proof that the threads load and run. */
  probe(): Promise<{ threadId: number; priority: number }>;
  /** Stops the threads; tasks still queued or running reject. Idempotent. */
  close(): Promise<void>;
}

// Start-time slots, one per task queued or running; far more than a worker ever has at once.
const SLOTS = 4_096;
// Texts per embedding task, so each task's budget and message stay bounded.
const EMBED_BATCH = 128;

// The threads' entry: it registers the TypeScript loader in the thread, then loads tasks.ts.
const THREAD_ENTRY = fileURLToPath(new URL('./thread.mjs', import.meta.url));

/**
 * A pool of worker threads for CPU-bound work on user content (piscina). A task that runs past
 * `budgetMs` is ended (its thread is terminated and replaced) and rejects with
 * `CONTENT_TOO_COMPLEX`, which is final: the same content would exhaust any worker's budget.
 * The budget counts running time only: each task writes its start time into a table shared with
 * this thread, which a timer reads while tasks are out.
 */
export function createContentPool(options: ContentPoolOptions): ContentPool {
  // Epoch milliseconds in 64 bits (0: not started): a 32-bit offset would wrap after 24.9 days.
  const shared = new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT);
  const startedAt = new BigInt64Array(shared);
  const free = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
  const workerData: PoolData = { started: shared, nice: options.nice ?? 0 };
  const piscina = new Piscina({
    filename: THREAD_ENTRY,
    minThreads: options.threads,
    maxThreads: options.threads,
    idleTimeout: Number.POSITIVE_INFINITY,
    maxQueue: SLOTS - options.threads,
    // The process's own flags (--import tsx among them) do nothing useful in a thread.
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: options.maxMemoryMb },
    workerData,
  });

  interface Running {
    slot: number;
    controller: AbortController;
    expired: boolean;
  }
  const running = new Set<Running>();
  let timer: NodeJS.Timeout | undefined;
  const tick = Math.min(250, Math.max(10, Math.floor(options.budgetMs / 4)));
  const check = () => {
    const now = Date.now();
    for (const task of running) {
      const started = Number(Atomics.load(startedAt, task.slot));
      if (started > 0 && now - started > options.budgetMs) {
        task.expired = true;
        task.controller.abort();
      }
    }
    if (running.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  const run = async <T>(task: ContentTask, input: object, signal?: AbortSignal): Promise<T> => {
    signal?.throwIfAborted();
    const slot = free.pop();
    if (slot === undefined) {
      throw new AppError('UNAVAILABLE', 'the content pool is saturated', {
        retryable: true,
        retryAfterSeconds: 1,
      });
    }
    Atomics.store(startedAt, slot, 0n);
    const entry: Running = { slot, controller: new AbortController(), expired: false };
    running.add(entry);
    timer ??= setInterval(check, tick).unref();
    const onAbort = () => entry.controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const began = performance.now();
    let outcome: ContentOutcome = 'error';
    try {
      const value = (await piscina.run(
        { ...input, slot },
        { name: task, signal: entry.controller.signal },
      )) as T;
      outcome = 'ok';
      return value;
    } catch (e) {
      if (entry.expired) {
        outcome = 'too_complex';
        throw new AppError(
          'CONTENT_TOO_COMPLEX',
          `processing this content (${task}) took longer than ${options.budgetMs} ms`,
          { cause: e },
        );
      }
      if (signal?.aborted) throw signal.reason;
      if ((e as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        outcome = 'too_complex';
        throw new AppError(
          'CONTENT_TOO_COMPLEX',
          `processing this content (${task}) needed more than ${options.maxMemoryMb} MB`,
          { cause: e },
        );
      }
      throw new AppError('INTERNAL', `the content task ${task} failed`, { cause: toError(e) });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      running.delete(entry);
      free.push(slot);
      options.onTask?.(task, outcome, (performance.now() - began) / 1_000);
    }
  };

  let closing: Promise<void> | undefined;
  return {
    chunk: (documentId, text, signal) =>
      run<Chunk[]>(
        'chunk',
        { documentId, text, chunkSize: options.chunkSize, chunkOverlap: options.chunkOverlap },
        signal,
      ),

    async embedHash(texts, dimension, signal) {
      const batches: Array<Promise<Float64Array>> = [];
      for (let i = 0; i < texts.length; i += EMBED_BATCH) {
        batches.push(
          run('embedHash', { texts: texts.slice(i, i + EMBED_BATCH), dimension }, signal),
        );
      }
      const vectors: number[][] = [];
      for (const packed of await Promise.all(batches)) {
        for (let offset = 0; offset < packed.length; offset += dimension) {
          vectors.push(Array.from(packed.subarray(offset, offset + dimension)));
        }
      }
      return vectors;
    },

    validate: (input: ValidateInput, signal) => run<Validation>('validate', input, signal),

    extract: (input: ExtractInput, signal) => run<string>('extract', input, signal),

    async probe() {
      return run<{ threadId: number; priority: number }>('probe', {});
    },

    close() {
      closing ??= (async () => {
        clearInterval(timer);
        await piscina.destroy();
      })();
      return closing;
    },
  };
}
