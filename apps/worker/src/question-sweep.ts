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

// How long a finished question stays in the deadline index: dropping it at once could outlive
// its terminal event. On a cluster the index and the record live on different masters; a
// failover of the record's master in the moment after the event may lose it while the removal
// stays, and the question would be open with nothing left to end it. Seconds cover the
// replication of the event.
const SETTLE_MS = 5_000;
// The most questions each pass of a round looks at: a round's work stays bounded, and a larger
// backlog takes more rounds.
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
 *   matter. A missing job counts only once the record is LOST_JOB_GRACE_MS old: the API adds
 *   the job one round trip after writing the record;
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
  /** LOST_JOB_GRACE_MS: how old a question without a job must be to be taken for lost. */
  lostJobGraceMs: number;
  /** The Redis key of a question's job (its hash), in its shard's queue. */
  jobKey: (questionId: string) => string;
}) {
  const { store, log } = deps;

  /**
   * Drops a question from the index when there is nothing left to end: it finished more than
   * SETTLE_MS ago, or its record is gone and it is old enough (`aged`) for that not to be a
   * record still being written (the API writes it and the index entry together, and on a cluster
   * either may land first). Resolves whether it did.
   */
  const settled = async (
    id: string,
    question: StoredQuestion | undefined,
    now: number,
    aged: boolean,
  ) => {
    const finishedAt = Number(question?.finishedAt);
    const done = question ? isFinished(question.status) && !(finishedAt > now - SETTLE_MS) : aged;
    if (done) await store.forget(id);
    return done;
  };

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
      // Past their deadline: the open ones are ended, and stay in the index (shifting the next
      // page) until a later round reads them settled.
      let offset = 0;
      for (let checked = 0; checked < MAX_CHECKED;) {
        const ids = await store.due(now, PAGE, offset);
        checked += ids.length;
        let kept = 0;
        for (const id of ids) {
          const question = await store.read(id);
          if (await settled(id, question, now, true)) continue;
          kept++;
          if (!question || isFinished(question.status)) continue;
          const outcome = ending(
            question,
            'JOB_TIMEOUT',
            `the question was not answered within ${deps.jobTimeoutMs} ms`,
          );
          if (await end(id, question, outcome)) timedOut++;
        }
        if (ids.length < PAGE) break;
        offset += kept;
      }
      // Open, and whose job is over (a failover lost the last event), or gone when the question
      // is old enough to have had one. BullMQ sets a job's `timestamp` when it adds it and
      // `finishedOn` when it completes or fails for good; a job waiting, delayed for a retry or
      // running has the one and not the other, and its worker (or its deadline) ends it.
      // A deadline is its question's creation plus this.
      const lifetime = deps.jobTimeoutMs + deadlineGraceMs(deps.jobTimeoutMs);
      offset = 0;
      for (let checked = 0; checked < MAX_CHECKED;) {
        const entries = await store.open(PAGE, offset);
        checked += entries.length;
        const jobs = await Promise.all(
          entries.map(({ id }) => deps.redis.hmget(deps.jobKey(id), 'finishedOn', 'timestamp')),
        );
        let removed = 0;
        for (const [i, { id, deadline }] of entries.entries()) {
          const [finishedOn, timestamp] = jobs[i]!;
          const missing = timestamp === null;
          if (!missing && !finishedOn) continue;
          const question = await store.read(id);
          if (await settled(id, question, now, deadline - lifetime <= now - deps.lostJobGraceMs)) {
            removed++;
            continue;
          }
          if (!question || isFinished(question.status)) continue;
          const createdAt = Number(question.createdAt);
          if (missing && !(createdAt <= now - deps.lostJobGraceMs)) continue;
          const outcome = ending(
            question,
            'LOST',
            'the question was lost (a Redis failover or a crashed process); ask again',
          );
          if (await end(id, question, outcome)) lost++;
        }
        if (entries.length < PAGE) break;
        offset += entries.length - removed;
      }
      return { timedOut, lost };
    },
  };
}
