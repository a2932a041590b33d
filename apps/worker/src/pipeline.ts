import { WaitingError, type Job } from 'bullmq';
import {
  JOBS,
  TERMINAL_STATUSES,
  toCollectionState,
  type AskqMetrics,
  type CacheEpoch,
  type EventLog,
  type Keys,
  type Logger,
  type QuestionStatus,
  type QuestionStore,
  type RedisClient,
} from '@askq/shared';
import { createAnswering, type AnsweringDeps, type AnsweringSettings } from './answering.js';
import { createAttempt, type Attempt } from './attempt.js';
import { createEventSink } from './event-sink.js';
import { createFinishing } from './finishing.js';
import { payloadOf } from './job-kit.js';

/** Settings of the pipeline. */
export interface PipelineSettings extends AnsweringSettings {
  tokenBatchMs: number;
  tokenBatchMax: number;
  /** JOB_TIMEOUT_MS: the longest a question may take from enqueue to its end. */
  jobTimeoutMs: number;
}

/** Clients and settings the processor runs with. */
export interface PipelineDeps extends Omit<AnsweringDeps, 'settings'> {
  redis: RedisClient;
  keys: Keys;
  events: EventLog;
  /** The owner of question records: every record write of an attempt goes through it. */
  questions: QuestionStore;
  log: Logger;
  metrics: AskqMetrics;
  settings: PipelineSettings;
}

/**
 * The BullMQ processor of the `questions` queue: the only worker code that sees a Job. It reads
 * what the attempt needs to know, skips a question that already finished (delivery is
 * at-least-once), starts the attempt (attempt.ts), has it answered (answering.ts) and finished
 * (finishing.ts), and tells BullMQ whether to retry. An attempt after a lost worker first tells
 * clients to drop the partial answer; one that a later attempt superseded stops without a word.
 */
export function createQuestionProcessor(deps: PipelineDeps) {
  const { log, settings, metrics } = deps;
  const answering = createAnswering(deps);
  const finishing = createFinishing(deps);

  /**
   * Puts a job that shutdown stopped back in the queue, at once and without spending one of its
   * attempts (BullMQ's WaitingError): clients hear `retry` (reason `worker_shutdown`) and drop
   * the partial answer, and the next worker to take it starts the next attempt.
   */
  const handBack = async (job: Job, token: string | undefined, attempt: Attempt) => {
    await finishing.announceRetry(attempt, 'worker_shutdown');
    await job.moveToWait(token);
    log.info({ questionId: attempt.q.id, attempt: attempt.number }, 'handed back at shutdown');
    throw new WaitingError();
  };

  // Three parameters: BullMQ passes the cancellation signal only to processors that declare it.
  return async function processQuestion(
    job: Job,
    token?: string,
    signal?: AbortSignal,
  ): Promise<{ status: QuestionStatus }> {
    const q = await payloadOf(job, JOBS.question.schema, log, 'question');
    // Everything the attempt needs to know first, sent together (the connection auto-pipelines:
    // one round trip per Redis node; on a cluster these keys live in different slots).
    const [record, generation, collectionHash] = await Promise.all([
      deps.questions.read(q.id),
      deps.redis.get(deps.keys.cacheGeneration),
      deps.redis.hgetall(deps.keys.collection(q.tenant, q.collection)),
    ]);
    const status = record?.status;
    if (status === undefined || TERMINAL_STATUSES.has(status)) {
      log.info({ questionId: q.id, status }, 'question already finished or expired; skipping');
      return { status: status ?? 'failed' };
    }
    const collection = toCollectionState(collectionHash);
    // The epoch is read before retrieval: an answer is only ever stored under the epoch it was
    // made in (or an older one, which then simply never matches).
    const epoch: CacheEpoch | undefined = q.cache
      ? { version: collection?.version ?? 0, generation: Number(generation ?? 0) }
      : undefined;
    const number = Math.max(1, job.attemptsStarted);
    const attempt = createAttempt({
      q,
      number,
      openSink: (onRefused) =>
        createEventSink(deps.events, q.id, {
          batchMs: settings.tokenBatchMs,
          batchMax: settings.tokenBatchMax,
          attempt: number,
          // The log refuses appends once the question finished elsewhere: stop work.
          onRefused,
        }),
      cancelSignal: signal,
      jobTimeoutMs: settings.jobTimeoutMs,
      epoch,
      collection,
      inFlightKey: record?.inFlightKey,
      questions: deps.questions,
      metrics,
    });
    // A later attempt owns the question: this worker lost the job's lock (in a Redis failover,
    // say) and BullMQ handed the job to another. This one ends without a word or a release.
    const superseded = async () =>
      Number((await deps.questions.read(q.id).catch(() => undefined))?.attempts ?? 0) > number;
    const abandon = () => {
      log.warn(
        { questionId: q.id, attempt: number },
        'a later attempt took this question over; stopping',
      );
      throw new Error(`attempt ${number} of question ${q.id} was superseded`);
    };

    if (number > 1 && Number(record?.retryAttempt) !== number) {
      // The previous attempt died without saying so (a crashed or killed worker).
      attempt.sink.send({ event: 'retry', data: { attempt: number, reason: 'worker_lost' } });
    }
    const startedAt = Date.now();
    const firstStartedAt = record?.startedAt === undefined ? startedAt : Number(record.startedAt);
    // Later attempts wait on purpose (backoff), so only the first one measures the queue.
    if (record?.startedAt === undefined) {
      metrics.queueWait.observe((startedAt - q.enqueuedAt) / 1_000);
    }
    attempt.sink.send(
      { event: 'status', data: { status: 'active', attempt: number } },
      { set: deps.questions.activeFields(number, firstStartedAt) },
    );
    const queueMs = firstStartedAt - q.enqueuedAt;
    try {
      const answered = await answering.answer(attempt);
      answered.result.timings.queueMs = queueMs;
      answered.result.timings.totalMs = Date.now() - q.enqueuedAt;
      await answering.remember(attempt, answered);
      if (await finishing.complete(attempt, answered)) return { status: 'completed' };
      if (await superseded()) return abandon();
      // Refused: a cancel was recorded between the last token and the end (or the question
      // ended elsewhere, and this is refused too). Nothing else would end it before its deadline.
      await finishing.cancel(attempt, finishing.spent(attempt, queueMs));
      return { status: 'cancelled' };
    } catch (e) {
      if (attempt.stopCause === 'refused' && (await superseded())) return abandon();
      if (attempt.stopCause === 'handback') return handBack(job, token, attempt);
      const attemptsLeft = job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      throw await finishing.fail(attempt, e, attemptsLeft, finishing.spent(attempt, queueMs));
    } finally {
      attempt.dispose();
    }
  };
}
