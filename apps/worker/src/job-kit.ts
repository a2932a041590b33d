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
 * The reason a job's signal carries when shutdown stops it to hand it back: its processor then
 * puts the job back in the queue for another worker, rather than end the question.
 */
export const HAND_BACK = 'askq:hand-back';

/**
 * Closes a worker: it takes no more jobs and waits for its active ones, at most `drainMs`
 * (BullMQ's close waits without a deadline). Then it stops the ones still running with
 * {@link HAND_BACK}, and waits at most `handBackMs` more for their processors to hand them back.
 * (BullMQ's `close(true)` would not do it: a second close only returns the first one's promise.)
 */
export async function closeWorker(
  worker: Worker,
  limits: { drainMs: number; handBackMs: number },
  log: Logger,
): Promise<void> {
  const closing = worker.close();
  if (await settlesWithin(closing, limits.drainMs)) return;
  log.warn({ queue: worker.name }, 'active jobs did not finish in time; handing them back');
  worker.cancelAllJobs(HAND_BACK);
  if (await settlesWithin(closing, limits.handBackMs)) return;
  // Their locks lapse once this process is gone, and another worker's stalled check takes them.
  log.warn({ queue: worker.name }, 'jobs not handed back in time; leaving them to lapse');
}

/** Whether `work` settles within `ms`; the wait, not the work, is bounded. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
