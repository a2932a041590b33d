import { UnrecoverableError } from 'bullmq';
import {
  AppError,
  toError,
  type Logger,
  type Outcome,
  type QuestionResult,
  type QuestionStore,
} from '@askq/shared';
import type { AnswerDetail } from './answering.js';
import { resultTimings, type Attempt } from './attempt.js';

/**
 * The end of an attempt: the question's end written through the store (which releases and
 * counts), and the one log line per finished question with its timings and their shares
 * (SPEC 4). Knows nothing of BullMQ but the error it asks to be thrown.
 */
export function createFinishing(deps: { questions: QuestionStore; log: Logger }) {
  const { questions, log } = deps;

  const end = (attempt: Attempt, outcome: Outcome) =>
    questions.finish(attempt.q.id, outcome, attempt.finishing).catch((e: unknown) => {
      log.warn({ err: toError(e), questionId: attempt.q.id }, `could not record ${outcome.status}`);
      return false;
    });

  const finished = (
    attempt: Attempt,
    outcome: string,
    code: string | undefined,
    spent: QuestionResult['timings'],
  ) =>
    log.info(
      {
        questionId: attempt.q.id,
        outcome,
        attempt: attempt.number,
        code,
        ...timingFields({ ...spent, totalMs: Date.now() - attempt.q.enqueuedAt }),
      },
      'question finished',
    );

  /** Ends the question `cancelled` (a cancel was recorded); resolves whether this call did. */
  /** Tells clients to drop the partial answer: another attempt follows (the question waits). */
  const announceRetry = (attempt: Attempt, reason: string): Promise<unknown> => {
    const next = attempt.number + 1;
    return attempt.sink
      .emit(
        { event: 'retry', data: { attempt: next, reason } },
        { set: questions.retryFields(next) },
      )
      .catch(() => undefined);
  };

  const cancel = async (attempt: Attempt, spent: QuestionResult['timings']) => {
    const ended = await end(attempt, { status: 'cancelled' });
    if (ended) finished(attempt, 'cancelled', 'CANCELLED', spent);
    return ended;
  };

  return {
    /** Ends the question completed; resolves whether this attempt's end landed. */
    async complete(attempt: Attempt, answered: { result: QuestionResult; detail: AnswerDetail }) {
      const { result, detail } = answered;
      const landed = await questions.finish(
        attempt.q.id,
        { status: 'completed', result, cached: result.cached },
        attempt.finishing,
      );
      if (landed) logCompleted(log, attempt, result, detail);
      return landed;
    },

    cancel,

    announceRetry,

    /**
     * Settles a failed attempt: a cancel ends the question `cancelled`; a passing fault with
     * attempts left announces the next one (`retry`, and the question waits `queued`); anything
     * else ends it `failed`. Resolves with the error to throw to BullMQ: a retryable one asks it
     * for the next attempt, an UnrecoverableError ends the job.
     */
    async fail(
      attempt: Attempt,
      thrown: unknown,
      attemptsLeft: boolean,
      spent: QuestionResult['timings'],
    ): Promise<Error> {
      const { q } = attempt;
      const error = asAppError(attempt.reasonFor(thrown));
      if (error.code === 'CANCELLED') {
        await cancel(attempt, spent);
        return new UnrecoverableError('cancelled');
      }
      if (error.retryable && attemptsLeft) {
        await announceRetry(attempt, error.code);
        log.warn(
          { questionId: q.id, attempt: attempt.number, code: error.code, err: error },
          'attempt failed; retrying',
        );
        return error;
      }
      await end(attempt, {
        status: 'failed',
        error: { code: error.code, message: error.message },
      });
      log.warn(
        { questionId: q.id, attempt: attempt.number, code: error.code, err: error },
        'question failed',
      );
      finished(attempt, 'failed', error.code, spent);
      return new UnrecoverableError(error.message);
    },

    /** What a failed attempt had spent when it stopped. */
    spent(attempt: Attempt, queueMs: number): QuestionResult['timings'] {
      return { ...resultTimings(attempt.timings), queueMs };
    },
  };
}

function asAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  // Anything unclassified is a bug, not a passing fault: retrying would repeat it.
  return new AppError('INTERNAL', 'the worker failed unexpectedly', { cause: toError(e) });
}

/** A finished question's timings, the time outside them, and each one's share of the total. */
export function timingFields(t: QuestionResult['timings']) {
  const parts = t.queueMs + t.retrievalMs + t.generationMs + t.validationMs;
  const other = Math.max(0, t.totalMs - parts);
  // Stage times are rounded one by one (and come from another clock than the total), so on a
  // question of a few milliseconds they can add up to more than it: shares are of the larger.
  const total = Math.max(t.totalMs, parts, 1);
  const share = (ms: number) => Number((ms / total).toFixed(3));
  return {
    timings: { ...t, otherMs: other },
    shares: {
      queue: share(t.queueMs),
      retrieval: share(t.retrievalMs),
      generation: share(t.generationMs),
      validation: share(t.validationMs),
      other: share(other),
    },
  };
}

function logCompleted(
  log: Logger,
  attempt: Attempt,
  result: QuestionResult,
  detail: AnswerDetail,
): void {
  log.info(
    {
      questionId: attempt.q.id,
      outcome: 'completed',
      cached: result.cached,
      route: result.route,
      routeReason: detail.routeReason,
      escalated: detail.escalated,
      firstTokenMs: detail.firstTokenMs === undefined ? undefined : Math.round(detail.firstTokenMs),
      usage: result.usage,
      model: result.model,
      ...timingFields(result.timings),
      validationPassed: result.validation.passed,
    },
    'question finished',
  );
}
