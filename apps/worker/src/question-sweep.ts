import type { Job } from 'bullmq';
import {
  deadlineGraceMs,
  isFinished,
  JOBS,
  toError,
  type Logger,
  type Outcome,
  type QuestionStore,
  type RedisClient,
  type StoredQuestion,
} from '@askq/shared';

// A question's record is written just before its job is added, one round trip apart (the API
// gives up on Redis after REDIS_COMMAND_TIMEOUT_MS): one younger than this may have no job yet.
// Older, a missing job means it was lost.
const JOB_ADD_GRACE_MS = 10_000;
// The most open questions one sweep looks at for a lost job: the sweep's work stays bounded.
const MAX_CHECKED = 10_000;
const PAGE = 500;

/**
 * Ends the questions nothing else will end, so that no client waits forever (each with `failed`
 * and a code that says why, or `cancelled` if a cancel was recorded):
 *
 * - past their deadline (JOB_TIMEOUT_MS and a grace, from the moment the record existed):
 *   `JOB_TIMEOUT`. A question no worker ever took, or one whose worker died while no other
 *   was left, is found here;
 * - whose job is over, or gone, while the record is open: `LOST`. A Redis failover lost the
 *   question's last event after its job finished (the record and the job live in different
 *   slots, often on different masters), the API died between the record and the job, or a
 *   failover kept one and lost the other. Whether BullMQ trimmed the finished job does not
 *   matter;
 * - whose job BullMQ failed without running it (it stalled more than `maxStalledCount` times):
 *   `LOST`, through `onFailed`, given to the workers' 'failed' event.
 *
 * It reads the deadline index, not BullMQ's sets, so what BullMQ trimmed does not hide a
 * question. One worker sweeps at a time (a lock); ending a question is idempotent anyway: the
 * log refuses a second terminal event, and only the append that landed releases and counts.
 */
export function createQuestionSweep(deps: {
  store: QuestionStore;
  redis: RedisClient;
  log: Logger;
  jobTimeoutMs: number;
  /** The Redis key of a question's job (its hash), in its shard's queue. */
  jobKey: (questionId: string) => string;
}) {
  const { store, log } = deps;

  const end = async (id: string, question: StoredQuestion, outcome: Outcome) => {
    const ended = await store.finish(id, outcome, {
      tenant: question.tenant ?? '',
      createdAt: Number(question.createdAt ?? Date.now()),
      inFlightKey: question.inFlightKey,
    });
    if (ended) {
      log.warn(
        {
          questionId: id,
          outcome: outcome.status,
          code: 'error' in outcome ? outcome.error.code : undefined,
        },
        'question ended by the sweep',
      );
    }
    return ended;
  };

  /** A question whose record is open but that nothing will end: its own end, or none. */
  const ending = (
    question: StoredQuestion,
    code: 'JOB_TIMEOUT' | 'LOST',
    message: string,
  ): Outcome =>
    question.cancelRequested === '1'
      ? { status: 'cancelled' }
      : { status: 'failed', error: { code, message } };

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
        const question = await store.read(id);
        if (!question || isFinished(question.status)) return;
        await end(
          id,
          question,
          ending(
            question,
            'LOST',
            `the workers lost this question too often (${reason.message}); ask again`,
          ),
        );
      } catch (e) {
        log.error({ err: toError(e), questionId: id }, 'could not end a lost question');
      }
    },

    /** One round; resolves with how many questions it ended, by reason. */
    async sweep(now = Date.now()): Promise<{ timedOut: number; lost: number }> {
      let timedOut = 0;
      let lost = 0;
      // Past their deadline: finished ones leave the index, open ones are ended. Every id read
      // here leaves it, so each page starts at the front again.
      for (let checked = 0; checked < MAX_CHECKED;) {
        const ids = await store.due(now, PAGE);
        checked += ids.length;
        for (const id of ids) {
          const question = await store.read(id);
          if (question && !isFinished(question.status)) {
            const outcome = ending(
              question,
              'JOB_TIMEOUT',
              `the question was not answered within ${deps.jobTimeoutMs} ms`,
            );
            if (await end(id, question, outcome)) timedOut++;
          }
          await store.forget(id);
        }
        if (ids.length < PAGE) break;
      }
      // Open, and whose job is over (a failover lost the last event), or gone when it is old
      // enough to have had one. A deadline is the record's creation plus JOB_TIMEOUT_MS and the
      // grace, so the records created before `cutoff` are those with deadlines up to:
      const oldEnough =
        now - JOB_ADD_GRACE_MS + deps.jobTimeoutMs + deadlineGraceMs(deps.jobTimeoutMs);
      let offset = 0;
      for (let checked = 0; checked < MAX_CHECKED;) {
        const entries = await store.open(PAGE, offset);
        checked += entries.length;
        // BullMQ sets `finishedOn` when a job completes or fails for good.
        const jobs = await Promise.all(
          entries.map(({ id }) =>
            Promise.all([
              deps.redis.exists(deps.jobKey(id)),
              deps.redis.hget(deps.jobKey(id), 'finishedOn'),
            ]),
          ),
        );
        // Ids taken out of the index shift the ones after them: the next page starts that much
        // sooner.
        let removed = 0;
        for (const [i, { id, deadline }] of entries.entries()) {
          const [exists, finishedOn] = jobs[i]!;
          const gone = exists === 0 && deadline <= oldEnough;
          if (!gone && !finishedOn) continue;
          const question = await store.read(id);
          if (!question || isFinished(question.status)) {
            await store.forget(id);
            removed++;
            continue;
          }
          const outcome = ending(
            question,
            'LOST',
            'the question was lost (a Redis failover or a crashed process); ask again',
          );
          if (await end(id, question, outcome)) lost++;
          removed++;
        }
        if (entries.length < PAGE) break;
        offset += entries.length - removed;
      }
      return { timedOut, lost };
    },
  };
}
