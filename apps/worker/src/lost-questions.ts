import type { Job } from 'bullmq';
import {
  JOBS,
  TERMINAL_STATUSES,
  toError,
  type AnswerCache,
  type AskqMetrics,
  type EventLog,
  type Keys,
  type Logger,
  type QuestionStatus,
  type RedisClient,
  type TenantSlots,
} from '@askq/shared';

/** A question queue's finished-job sets, as BullMQ names them (`Queue.keys`). */
export interface FinishedJobKeys {
  completed: string;
  failed: string;
}

/**
 * Ends questions whose job is over but whose clients were never told, with `failed` /
 * `UNAVAILABLE`, so they can ask again instead of waiting for good. Two ways this happens:
 *
 * - BullMQ fails a job without running the processor: a job that stalled more than
 *   `maxStalledCount` times (its workers kept dying or losing its lock) fails as soon as a worker
 *   picks it up again. `onFailed` is given to the worker's 'failed' event for this.
 * - A Redis failover loses the question's last event. Replication is asynchronous, and the
 *   question's record and log live in another slot, often on another master, than its job: the
 *   job can be recorded as finished while the record still says `active`. `sweep` looks at the
 *   jobs finished lately and ends those.
 */
export function createLostQuestions(deps: {
  redis: RedisClient;
  keys: Keys;
  events: EventLog;
  slots: TenantSlots;
  cache: AnswerCache;
  metrics: AskqMetrics;
  log: Logger;
}) {
  const end = async (id: string, message: string) => {
    const [tenant, createdAt, inFlightKey] = await deps.redis.hmget(
      deps.keys.question(id),
      'tenant',
      'createdAt',
      'inFlightKey',
    );
    if (!tenant) return false;
    const error = { code: 'UNAVAILABLE', message };
    const finishedAt = Date.now();
    // Refused when the question already ended, which the processor does for every end it sees
    // itself: then there is nothing to do.
    const landed = await deps.events.append(
      id,
      { event: 'failed', data: { error } },
      { set: { status: 'failed', finishedAt, stage: '', error: JSON.stringify(error) } },
    );
    if (landed === null) return false;
    await Promise.all([
      deps.slots.release(tenant, id),
      inFlightKey ? deps.cache.releaseInFlight(inFlightKey, id) : undefined,
    ]);
    deps.metrics.questions.labels('failed', 'false').inc();
    deps.metrics.questionDuration
      .labels('failed')
      .observe((finishedAt - Number(createdAt)) / 1_000);
    return true;
  };

  return {
    async onFailed(job: Job | undefined, reason: Error): Promise<void> {
      // A failure the job will be retried after is not the end (the processor said `retry`).
      const final =
        reason.name === 'UnrecoverableError' ||
        (job?.attemptsMade ?? 0) >= (job?.opts.attempts ?? 1);
      const parsed = job && final ? JOBS.question.schema.safeParse(job.data) : undefined;
      if (!parsed?.success) return;
      const id = parsed.data.id;
      try {
        const message = `the workers lost this question too often (${reason.message}); ask again`;
        if (await end(id, message)) {
          deps.log.warn(
            { questionId: id, reason: reason.message },
            'question lost by its workers; failed',
          );
        }
      } catch (e) {
        deps.log.error({ err: toError(e), questionId: id }, 'could not end a lost question');
      }
    },

    /**
     * Ends the questions among those whose jobs finished in the last `lookbackMs` that are still
     * open; resolves with how many. Job ids are question ids. The processor writes a question's
     * last event before its job can finish, so an open question with a finished job lost it.
     */
    async sweep(queues: FinishedJobKeys[], lookbackMs: number): Promise<number> {
      const since = Date.now() - lookbackMs;
      const ids = (
        await Promise.all(
          queues.flatMap((q) =>
            [q.completed, q.failed].map((key) =>
              deps.redis.zrevrangebyscore(key, '+inf', since, 'LIMIT', 0, 1_000),
            ),
          ),
        )
      ).flat();
      const statuses = await Promise.all(
        ids.map((id) => deps.redis.hget(deps.keys.question(id), 'status')),
      );
      let ended = 0;
      for (const [i, id] of ids.entries()) {
        const status = statuses[i];
        if (!status || TERMINAL_STATUSES.has(status as QuestionStatus)) continue;
        // Most likely a failover; a job the stalled check failed can also be found here first.
        if (await end(id, 'the answer was lost (a Redis failover or lost workers); ask again')) {
          ended++;
          deps.log.warn({ questionId: id, status }, 'question left open by a lost event; failed');
        }
      }
      return ended;
    },
  };
}
