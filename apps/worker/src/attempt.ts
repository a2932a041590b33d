import {
  AppError,
  type AppendOptions,
  type AskEvent,
  type AskqMetrics,
  type CacheEpoch,
  type CollectionState,
  type FinishContext,
  type QuestionJob,
  type QuestionResult,
  type QuestionStore,
  type StageName,
} from '@askq/shared';
import type { EventSink } from './event-sink.js';
import { HAND_BACK } from './job-kit.js';

/** Why an attempt was stopped before it ended by itself. */
export type StopCause = 'refused' | 'timeout' | 'cancelled' | 'handback';

/** Milliseconds spent in each stage by this attempt (an escalation adds a second run). */
export type StageTimings = Record<StageName, number>;

/**
 * One run of a question by a worker, everything its steps share: the question, its attempt
 * number, its event sink, the signal that stops it, the cache epoch and collection state read at
 * its start, and the stage runner that times and announces each stage.
 */
export interface Attempt {
  readonly q: QuestionJob;
  readonly number: number;
  readonly sink: EventSink;
  /** Aborted when the attempt must stop: see {@link Attempt.stopCause}. */
  readonly signal: AbortSignal;
  readonly stopCause: StopCause | undefined;
  /** The epoch answers are cached under; undefined when the question skips the cache. */
  readonly epoch: CacheEpoch | undefined;
  readonly collection: CollectionState | undefined;
  readonly timings: StageTimings;
  /** Runs one stage: `started`, then `completed` with its time, or `failed`. */
  stage<T>(name: StageName, work: () => Promise<T>): Promise<T>;
  /** How this attempt ends its question: through the sink, so the end follows its tokens. */
  readonly finishing: FinishContext;
  /** The error a stopped attempt ends with (JOB_TIMEOUT or CANCELLED), else `e` itself. */
  reasonFor(e: unknown): unknown;
  /** Stops for `cause` (the first cause wins). */
  stopFor(cause: StopCause): void;
  /** The timers and listeners go; call once the attempt is over. */
  dispose(): void;
}

/** What {@link createAttempt} needs. */
export interface AttemptOptions {
  q: QuestionJob;
  number: number;
  /** Builds the sink; `onRefused` is called when the log refuses an event. */
  openSink: (onRefused: () => void) => EventSink;
  /** BullMQ's cancel signal for the job. */
  cancelSignal: AbortSignal | undefined;
  jobTimeoutMs: number;
  epoch: CacheEpoch | undefined;
  collection: CollectionState | undefined;
  inFlightKey: string | undefined;
  questions: QuestionStore;
  metrics: AskqMetrics;
}

/**
 * Starts an attempt. One controller stops it, for the first of four causes: the log refused an
 * event (the question finished elsewhere, a cancel was recorded, or a later attempt took over),
 * JOB_TIMEOUT_MS passed (it bounds the whole question from enqueue, all attempts and waits
 * included), BullMQ cancelled the job, or shutdown asked for it back. One controller, not a signal per cause joined with
 * AbortSignal.any: each signal costs, and this runs for every question.
 */
export function createAttempt(options: AttemptOptions): Attempt {
  const { q, metrics } = options;
  const stopper = new AbortController();
  let stopCause: StopCause | undefined;
  const stopFor = (cause: StopCause) => {
    if (stopCause) return;
    stopCause = cause;
    stopper.abort();
  };
  const timeLimit = setTimeout(
    () => stopFor('timeout'),
    Math.max(1, q.enqueuedAt + options.jobTimeoutMs - Date.now()),
  );
  // BullMQ's signal carries a cancel of the job, or shutdown asking for it back (job-kit.ts).
  const onCancel = () =>
    stopFor(options.cancelSignal?.reason === HAND_BACK ? 'handback' : 'cancelled');
  options.cancelSignal?.addEventListener('abort', onCancel, { once: true });
  if (options.cancelSignal?.aborted) onCancel();
  const sink = options.openSink(() => stopFor('refused'));
  const timings: StageTimings = { retrieval: 0, generation: 0, validation: 0 };
  const signal = stopper.signal;

  return {
    q,
    number: options.number,
    sink,
    signal,
    get stopCause() {
      return stopCause;
    },
    epoch: options.epoch,
    collection: options.collection,
    timings,

    async stage<T>(name: StageName, work: () => Promise<T>): Promise<T> {
      signal.throwIfAborted();
      sink.send(
        { event: 'stage', data: { stage: name, state: 'started' } },
        { set: options.questions.stageFields(name) },
      );
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const observe = (outcome: 'ok' | 'error') =>
        metrics.stageDuration.labels(name, outcome).observe((performance.now() - started) / 1_000);
      try {
        const value = await work();
        const ms = elapsed();
        observe('ok');
        timings[name] += ms;
        sink.send({ event: 'stage', data: { stage: name, state: 'completed', ms } });
        return value;
      } catch (e) {
        observe('error');
        sink.send({ event: 'stage', data: { stage: name, state: 'failed', ms: elapsed() } });
        throw e;
      }
    },

    finishing: {
      tenant: q.tenant,
      createdAt: q.enqueuedAt,
      inFlightKey: options.inFlightKey,
      append: (event: AskEvent, appendOptions: AppendOptions) => sink.emit(event, appendOptions),
    },

    reasonFor(e) {
      if (!signal.aborted) return e;
      if (stopCause === 'timeout') {
        return new AppError(
          'JOB_TIMEOUT',
          `the question took longer than ${options.jobTimeoutMs} ms`,
          { cause: e },
        );
      }
      return new AppError('CANCELLED', 'the question was cancelled', { cause: e });
    },

    stopFor,

    dispose() {
      clearTimeout(timeLimit);
      options.cancelSignal?.removeEventListener('abort', onCancel);
    },
  };
}

/** A result's timings from its stages; queue and total are filled in when it finishes. */
export function resultTimings(timings: StageTimings): QuestionResult['timings'] {
  return {
    queueMs: 0,
    retrievalMs: timings.retrieval,
    generationMs: timings.generation,
    validationMs: timings.validation,
    totalMs: 0,
  };
}
