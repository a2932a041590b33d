import { UnrecoverableError, Worker, type Job, type Processor, type WorkerOptions } from 'bullmq';
import type { z } from 'zod';
import { toError, type Logger } from '@askq/shared';

/**
 * A job's payload, checked against its queue's schema. A payload that does not parse can never
 * succeed: it is logged and failed for good (UnrecoverableError, no retry), after `onInvalid`
 * has let go of what the job held (its quota lease, say).
 */
export async function payloadOf<T>(
  job: Job,
  schema: z.ZodType<T>,
  log: Logger,
  what: string,
  onInvalid?: (data: unknown) => Promise<unknown>,
): Promise<T> {
  const parsed = schema.safeParse(job.data);
  if (parsed.success) return parsed.data;
  log.error({ jobId: job.id, issues: parsed.error.issues }, `invalid ${what} payload`);
  await onInvalid?.(job.data).catch(() => undefined);
  throw new UnrecoverableError(`invalid ${what} payload`);
}

/** A BullMQ worker whose errors (a lost connection, a failed lock renewal) are logged, not thrown. */
export function openWorker(
  queue: string,
  processor: Processor,
  options: WorkerOptions,
  log: Logger,
  context: Record<string, unknown> = {},
): Worker {
  const worker = new Worker(queue, processor, options);
  worker.on('error', (e: unknown) =>
    log.warn({ err: toError(e), queue, ...context }, 'worker error'),
  );
  return worker;
}

/**
 * Closes a worker: it takes no more jobs and waits for its active ones, at most `timeoutMs`
 * (BullMQ's close waits without a deadline), then hands the rest back to the queue.
 */
export async function closeWorker(worker: Worker, timeoutMs: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
    timer.unref();
  });
  try {
    if ((await Promise.race([worker.close(), late])) === 'late') {
      log.warn({ queue: worker.name }, 'active jobs did not finish in time; handing them back');
      await worker.close(true);
    }
  } finally {
    clearTimeout(timer);
  }
}
