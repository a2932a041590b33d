import type { Job } from 'bullmq';
import {
  JOBS,
  toError,
  type AnswerCache,
  type AskqMetrics,
  type EventLog,
  type Keys,
  type Logger,
  type RedisClient,
  type TenantSlots,
} from '@askq/shared';

/**
 * BullMQ can fail a question's job without running the processor: a job that stalled more than
 * `maxStalledCount` times (its workers kept dying or losing its lock) fails as soon as a worker
 * picks it up again. The processor never sees it, so nothing would tell the question's clients;
 * this ends the question for them. Given to the worker's 'failed' event.
 */
export function createLostQuestionHandler(deps: {
  redis: RedisClient;
  keys: Keys;
  events: EventLog;
  slots: TenantSlots;
  cache: AnswerCache;
  metrics: AskqMetrics;
  log: Logger;
}) {
  return async (job: Job | undefined, reason: Error): Promise<void> => {
    // A failure the job will be retried after is not the end (the processor said `retry`).
    const final =
      reason.name === 'UnrecoverableError' || (job?.attemptsMade ?? 0) >= (job?.opts.attempts ?? 1);
    const parsed = job && final ? JOBS.question.schema.safeParse(job.data) : undefined;
    if (!parsed?.success) return;
    const q = parsed.data;
    const error = {
      code: 'UNAVAILABLE',
      message: `the workers lost this question too often (${reason.message}); ask again`,
    };
    const finishedAt = Date.now();
    try {
      // Refused when the processor already ended the question, which it does for every failure
      // it sees itself: then there is nothing to do.
      const landed = await deps.events.append(
        q.id,
        { event: 'failed', data: { error } },
        { set: { status: 'failed', finishedAt, stage: '', error: JSON.stringify(error) } },
      );
      if (landed === null) return;
      const inFlightKey = await deps.redis.hget(deps.keys.question(q.id), 'inFlightKey');
      await Promise.all([
        deps.slots.release(q.tenant, q.id),
        inFlightKey ? deps.cache.releaseInFlight(inFlightKey, q.id) : undefined,
      ]);
      deps.metrics.questions.labels('failed', 'false').inc();
      deps.metrics.questionDuration.labels('failed').observe((finishedAt - q.enqueuedAt) / 1_000);
      deps.log.warn(
        { questionId: q.id, reason: reason.message },
        'question lost by its workers; failed',
      );
    } catch (e) {
      deps.log.error({ err: toError(e), questionId: q.id }, 'could not end a lost question');
    }
  };
}
