import { UnrecoverableError, type Job } from 'bullmq';
import type { RedisClient } from '@askq/shared';
import {
  AppError,
  JOBS,
  TERMINAL_STATUSES,
  toCollectionState,
  toError,
  type AnswerCache,
  type AppendOptions,
  type AskEvent,
  type FinishContext,
  type Outcome,
  type QuestionStore,
  type AskqMetrics,
  type CachedAnswer,
  type CacheEpoch,
  type CacheIdentity,
  type CollectionState,
  type CollectionRegistry,
  type EventLog,
  type Keys,
  type Logger,
  type QuestionJob,
  type QuestionResult,
  type QuestionStatus,
  type Route,
  type Source,
  type StageName,
  type Usage,
  type Validation,
} from '@askq/shared';
import type { Embedder } from './embeddings/embedder.js';
import { createEventSink, type EventSink } from './event-sink.js';
import type { KnowledgeStore } from './knowledge/chroma-store.js';
import type { ChatModel } from './llm/chat-model.js';
import { chooseRoute } from './llm/route.js';
import { generate, type GenerationOutput } from './stages/generate.js';
import { embedQuestion, retrieve } from './stages/retrieve.js';
import type { SemanticCache } from './cache/semantic-cache.js';
import type { ContentWork } from './content/content-work.js';

/** The answer given, without asking a model, when retrieval finds nothing. */
export const NO_SOURCES_ANSWER = 'No sources in this collection match the question.';

/** Settings of the pipeline. */
export interface PipelineSettings {
  tokenBatchMs: number;
  tokenBatchMax: number;
  maxAnswerChars: number;
  groundingThreshold: number;
  validationMode: 'lenient' | 'strict';
  /** JOB_TIMEOUT_MS: the longest a question may take from enqueue to its end. */
  jobTimeoutMs: number;
  /** Best retrieval score below which `auto` routes to the smart model. */
  weakScore: number;
}

/** Clients and settings the processor runs with. */
export interface PipelineDeps {
  redis: RedisClient;
  keys: Keys;
  events: EventLog;
  /** The owner of question records: every record write of an attempt goes through it. */
  questions: QuestionStore;
  log: Logger;
  embedder: Embedder;
  store: KnowledgeStore;
  registry: CollectionRegistry;
  cache: AnswerCache;
  semanticCache: SemanticCache;
  model: ChatModel;
  /** CPU-bound work on the question's text, off the event loop (validation here). */
  content: ContentWork;
  settings: PipelineSettings;
  metrics: AskqMetrics;
}

type StageTimings = Record<StageName, number>;

/** What the log line of a finished question says beyond its result, and what caching needs. */
interface AnswerDetail {
  routeReason: string;
  escalated: boolean;
  /** The question's embedding, for the semantic cache. */
  vector?: number[] | undefined;
  /** The stored result a semantic hit replayed. */
  cachedFrom?: QuestionResult;
  /** Of the generation whose answer was kept. */
  firstTokenMs?: number | undefined;
}

/**
 * The BullMQ processor of the `questions` queue: the only worker code that sees a Job. It runs
 * retrieval, generation and validation in order, times each, and writes every step to the
 * question's event log. Delivery is at-least-once, so a question that already finished is skipped
 * and an attempt after a lost worker first tells clients to drop the partial answer.
 */
export function createQuestionProcessor(deps: PipelineDeps) {
  const { log, settings, metrics } = deps;

  // Three parameters: BullMQ passes the cancellation signal only to processors that declare it.
  return async function processQuestion(
    job: Job,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<{ status: QuestionStatus }> {
    const parsed = JOBS.question.schema.safeParse(job.data);
    if (!parsed.success) {
      log.error({ jobId: job.id, issues: parsed.error.issues }, 'invalid question payload');
      throw new UnrecoverableError('invalid question payload');
    }
    const q = parsed.data;
    // Everything the attempt needs to know first, sent together (the connection auto-pipelines:
    // one round trip per Redis node; on a cluster these keys live in different slots).
    const [record, generation, collectionHash] = await Promise.all([
      deps.questions.read(q.id),
      deps.redis.get(deps.keys.cacheGeneration),
      deps.redis.hgetall(deps.keys.collection(q.tenant, q.collection)),
    ]);
    const status = record?.status ?? null;
    const firstStartedAt = record?.startedAt ?? null;
    const retryAttempt = record?.retryAttempt ?? null;
    const inFlightKey = record?.inFlightKey;
    // How this attempt ends the question: through its sink, so the terminal event follows the
    // tokens queued there; the store releases and counts.
    const finishVia = (sink: EventSink) => ({
      tenant: q.tenant,
      createdAt: q.enqueuedAt,
      inFlightKey,
      append: (event: AskEvent, options: AppendOptions) => sink.emit(event, options),
    });
    const collection = toCollectionState(collectionHash);
    // The epoch is read before retrieval: an answer is only ever stored under the epoch it was
    // made in (or an older one, which then simply never matches).
    const epoch: CacheEpoch | undefined = q.cache
      ? { version: collection?.version ?? 0, generation: Number(generation ?? 0) }
      : undefined;
    if (status === null || TERMINAL_STATUSES.has(status)) {
      log.info({ questionId: q.id, status }, 'question already finished or expired; skipping');
      return { status: status ?? 'failed' };
    }

    const attempt = Math.max(1, job.attemptsStarted);
    // One controller stops the attempt, for the first of three causes: the log refused an event,
    // JOB_TIMEOUT_MS passed (it bounds the whole question from enqueue, all attempts and waits
    // included), or BullMQ cancelled the job. (One, not a signal per cause joined with
    // AbortSignal.any: each signal costs, and this runs for every question.)
    const stopper = new AbortController();
    const stop = stopper.signal;
    let stopCause: 'refused' | 'timeout' | 'cancelled' | undefined;
    const stopFor = (cause: NonNullable<typeof stopCause>) => {
      if (stopCause) return;
      stopCause = cause;
      stopper.abort();
    };
    const timeLimit = setTimeout(
      () => stopFor('timeout'),
      Math.max(1, q.enqueuedAt + settings.jobTimeoutMs - Date.now()),
    );
    const onCancel = () => stopFor('cancelled');
    signal?.addEventListener('abort', onCancel, { once: true });
    if (signal?.aborted) onCancel();
    const stopReason = (e: unknown): unknown => {
      if (!stop.aborted) return e;
      if (stopCause === 'timeout') {
        return new AppError(
          'JOB_TIMEOUT',
          `the question took longer than ${settings.jobTimeoutMs} ms`,
          { cause: e },
        );
      }
      return cancelled(e);
    };
    const sink = createEventSink(deps.events, q.id, {
      batchMs: settings.tokenBatchMs,
      batchMax: settings.tokenBatchMax,
      attempt,
      // The log refuses appends once the question finished elsewhere (e.g. cancelled): stop work.
      onRefused: () => stopFor('refused'),
    });
    // A later attempt owns the question: this worker lost the job's lock (in a Redis failover,
    // say) and BullMQ handed the job to another. This one ends without a word or a release.
    const superseded = async () =>
      Number((await deps.questions.read(q.id).catch(() => undefined))?.attempts ?? 0) > attempt;
    const abandon = () => {
      log.warn({ questionId: q.id, attempt }, 'a later attempt took this question over; stopping');
      throw new Error(`attempt ${attempt} of question ${q.id} was superseded`);
    };

    if (attempt > 1 && Number(retryAttempt) !== attempt) {
      // The previous attempt died without saying so (a crashed or killed worker).
      sink.send({ event: 'retry', data: { attempt, reason: 'worker_lost' } });
    }
    const startedAt = Date.now();
    // Later attempts wait on purpose (backoff), so only the first one measures the queue.
    if (firstStartedAt === null) metrics.queueWait.observe((startedAt - q.enqueuedAt) / 1_000);
    sink.send(
      { event: 'status', data: { status: 'active', attempt } },
      { set: deps.questions.activeFields(attempt, Number(firstStartedAt ?? startedAt)) },
    );
    const timings: StageTimings = { retrieval: 0, generation: 0, validation: 0 };
    try {
      const { result, detail } = await answer(q, attempt, sink, timings, stop, epoch, collection);
      result.timings.queueMs = Number(firstStartedAt ?? startedAt) - q.enqueuedAt;
      const finishedAt = Date.now();
      result.timings.totalMs = finishedAt - q.enqueuedAt;
      // Only answers that passed validation are ever served again (SPEC 6). Both layers are
      // written before `completed`, so a client that asks again on seeing it is answered from them.
      const cacheable = epoch && result.validation.passed ? epoch : undefined;
      // Written side by side: independent stores (Redis, Chroma), and neither ever throws.
      if (cacheable) {
        await Promise.all([
          rememberExact(q, cacheable, detail.cachedFrom ?? result),
          !detail.cachedFrom && detail.vector
            ? rememberSemantic(q, cacheable, result, detail.vector)
            : undefined,
        ]);
      }
      const landed = await deps.questions.finish(
        q.id,
        { status: 'completed', result, cached: result.cached },
        finishVia(sink),
      );
      if (!landed && (await superseded())) return abandon();
      logFinished(log, q, result, detail);
      return { status: 'completed' };
    } catch (e) {
      if (stopCause === 'refused' && (await superseded())) return abandon();
      const spent = {
        ...resultTimings(timings),
        queueMs: Number(firstStartedAt ?? startedAt) - q.enqueuedAt,
      };
      return await fail(q, job, attempt, sink, stopReason(e), finishVia(sink), spent);
    } finally {
      clearTimeout(timeLimit);
      signal?.removeEventListener('abort', onCancel);
    }
  };

  /** Stores an answer under this question's exact wording (a semantic hit's too). */
  async function rememberExact(q: QuestionJob, epoch: CacheEpoch, result: QuestionResult) {
    await deps.cache.store(identityOf(q), epoch, result).catch((e: unknown) => {
      log.warn({ err: toError(e), questionId: q.id }, 'could not cache the answer');
    });
  }

  /** Stores a freshly generated answer by the question's meaning. */
  async function rememberSemantic(
    q: QuestionJob,
    epoch: CacheEpoch,
    result: QuestionResult,
    vector: number[],
  ) {
    const entry: CachedAnswer = { ...epoch, storedAt: Date.now(), result };
    await deps.semanticCache.store(identityOf(q), epoch, vector, entry);
  }

  async function answer(
    q: QuestionJob,
    attempt: number,
    sink: EventSink,
    timings: StageTimings,
    signal: AbortSignal,
    epoch: CacheEpoch | undefined,
    collection: CollectionState | undefined,
  ): Promise<{ result: QuestionResult; detail: AnswerDetail }> {
    const stage = async <T>(name: StageName, work: () => Promise<T>): Promise<T> => {
      signal.throwIfAborted();
      sink.send(
        { event: 'stage', data: { stage: name, state: 'started' } },
        { set: deps.questions.stageFields(name) },
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
    };

    const found = await stage('retrieval', async () => {
      const vector = await embedQuestion(q, collection, deps, signal);
      if (!vector) return { sources: [] };
      if (!epoch) return { sources: await retrieve(q, vector, deps), vector };
      // The semantic layer is checked here, before any model is asked (SPEC 6). The documents
      // are searched at the same time rather than after a miss: a miss, the usual outcome, then
      // waits for the slower of the two instead of both. A hit does not need them, even failed.
      const [hit, retrieved] = await Promise.all([
        deps.semanticCache.lookup(identityOf(q), epoch, vector),
        retrieve(q, vector, deps).then(
          (sources) => ({ sources }),
          (error: unknown) => ({ error }),
        ),
      ]);
      metrics.cacheLookups.labels('semantic', hit ? 'hit' : 'miss').inc();
      deps.cache
        .recordLookup(q.tenant, 'semantic', hit)
        .catch((e: unknown) => log.warn({ err: toError(e) }, 'cache stats not recorded'));
      if (hit) return { sources: hit.result.sources, vector, hit };
      if ('error' in retrieved) throw retrieved.error;
      return { sources: retrieved.sources, vector };
    });
    const { sources } = found;
    sink.send({ event: 'sources', data: { sources } });
    if (found.hit) return replay(found.hit.result, attempt, sink, stage, timings, found.vector);

    const routed = chooseRoute({
      question: q.question,
      requested: q.model,
      sources,
      weakScore: settings.weakScore,
    });
    let route: Route = routed.route;
    const detail: AnswerDetail = {
      routeReason: routed.reason,
      escalated: false,
      vector: found.vector,
    };
    const run = async (r: Route) => {
      const output = await stage('generation', () =>
        generateAnswer(q.question, sources, r, attempt, sink, signal),
      );
      if (output.model !== 'none') {
        if (output.firstTokenMs !== undefined) {
          metrics.firstToken.labels(output.model).observe(output.firstTokenMs / 1_000);
        }
        metrics.tokens.labels(output.model, 'prompt').inc(output.usage.promptTokens);
        metrics.tokens.labels(output.model, 'completion').inc(output.usage.completionTokens);
      }
      const validation = await stage('validation', () =>
        deps.content.validate(
          {
            answer: output.answer,
            sources,
            maxAnswerChars: settings.maxAnswerChars,
            groundingThreshold: settings.groundingThreshold,
            ...(output.truncated ? { truncated: true } : {}),
          },
          signal,
        ),
      );
      return { output, validation };
    };

    let { output, validation } = await run(route);
    detail.firstTokenMs = output.firstTokenMs;
    let usage: Usage = output.usage;
    if (!validation.passed && route === 'fast' && sources.length > 0) {
      // One escalation with the same sources; clients drop the tokens streamed so far.
      sink.send({ event: 'retry', data: { attempt, reason: 'escalation' } });
      route = 'smart';
      detail.escalated = true;
      ({ output, validation } = await run(route));
      usage = {
        promptTokens: usage.promptTokens + output.usage.promptTokens,
        completionTokens: usage.completionTokens + output.usage.completionTokens,
      };
    }
    if (!validation.passed && settings.validationMode === 'strict') {
      throw new AppError(
        'VALIDATION_FAILED',
        `the answer failed validation: ${failedChecks(validation)}`,
      );
    }
    const result: QuestionResult = {
      answer: output.answer,
      sources,
      model: output.model,
      route,
      cached: false,
      usage,
      timings: resultTimings(timings),
      validation,
    };
    return { result, detail };
  }

  /**
   * Answers with a cached result through the same stages and events as a generated one: the
   * answer streams as tokens, no model is asked, and the result says `cached: true`.
   */
  async function replay(
    cached: QuestionResult,
    attempt: number,
    sink: EventSink,
    stage: <T>(name: StageName, work: () => Promise<T>) => Promise<T>,
    timings: StageTimings,
    vector: number[] | undefined,
  ): Promise<{ result: QuestionResult; detail: AnswerDetail }> {
    await stage('generation', () => {
      for (const word of cached.answer.split(/(?<=\S)(?=\s)/)) sink.token(word, attempt);
      return Promise.resolve();
    });
    const validation = await stage('validation', () => Promise.resolve(cached.validation));
    const result: QuestionResult = {
      ...cached,
      validation,
      cached: true,
      usage: { promptTokens: 0, completionTokens: 0 },
      timings: resultTimings(timings),
    };
    return {
      result,
      detail: { routeReason: 'cached', escalated: false, vector, cachedFrom: cached },
    };
  }

  async function generateAnswer(
    question: string,
    sources: Source[],
    route: Route,
    attempt: number,
    sink: EventSink,
    signal: AbortSignal,
  ): Promise<GenerationOutput> {
    if (sources.length === 0) {
      // Nothing to ground an answer in: say so instead of paying a model to guess.
      sink.token(NO_SOURCES_ANSWER, attempt);
      return {
        answer: NO_SOURCES_ANSWER,
        model: 'none',
        usage: { promptTokens: 0, completionTokens: 0 },
      };
    }
    return generate(
      { question, sources, route },
      {
        model: deps.model,
        onToken: (text) => sink.token(text, attempt),
        maxChars: settings.maxAnswerChars,
      },
      signal,
    );
  }

  async function fail(
    q: QuestionJob,
    job: Job,
    attempt: number,
    sink: EventSink,
    thrown: unknown,
    finishing: FinishContext,
    spent: QuestionResult['timings'],
  ): Promise<never> {
    const error = asAppError(thrown);
    const finishedAt = Date.now();
    // The same one line per finished question as for completed ones (SPEC 4), whatever the end.
    const finished = (outcome: string) =>
      log.info(
        {
          questionId: q.id,
          outcome,
          attempt,
          code: error.code,
          ...timingFields({ ...spent, totalMs: finishedAt - q.enqueuedAt }),
        },
        'question finished',
      );
    const end = (outcome: Outcome) =>
      deps.questions.finish(q.id, outcome, finishing).catch((e: unknown) => {
        log.warn({ err: toError(e), questionId: q.id }, `could not record ${outcome.status}`);
        return false;
      });
    if (error.code === 'CANCELLED') {
      await end({ status: 'cancelled' });
      finished('cancelled');
      throw new UnrecoverableError('cancelled');
    }
    const maxAttempts = job.opts.attempts ?? 1;
    if (error.retryable && job.attemptsMade + 1 < maxAttempts) {
      await sink
        .emit(
          { event: 'retry', data: { attempt: attempt + 1, reason: error.code } },
          { set: deps.questions.retryFields(attempt + 1) },
        )
        .catch(() => undefined);
      log.warn(
        { questionId: q.id, attempt, code: error.code, err: error },
        'attempt failed; retrying',
      );
      throw error;
    }
    await end({ status: 'failed', error: { code: error.code, message: error.message } });
    log.warn({ questionId: q.id, attempt, code: error.code, err: error }, 'question failed');
    finished('failed');
    throw new UnrecoverableError(error.message);
  }
}

/** A result's timings from its stages; queue and total are filled in when it finishes. */
function resultTimings(timings: StageTimings): QuestionResult['timings'] {
  return {
    queueMs: 0,
    retrievalMs: timings.retrieval,
    generationMs: timings.generation,
    validationMs: timings.validation,
    totalMs: 0,
  };
}

function identityOf(q: QuestionJob): CacheIdentity {
  return {
    tenant: q.tenant,
    collection: q.collection,
    question: q.question,
    model: q.model,
    topK: q.topK,
  };
}

function cancelled(cause: unknown): AppError {
  return new AppError('CANCELLED', 'the question was cancelled', { cause });
}

function asAppError(e: unknown): AppError {
  if (e instanceof AppError) return e;
  // Anything unclassified is a bug, not a passing fault: retrying would repeat it.
  return new AppError('INTERNAL', 'the worker failed unexpectedly', { cause: toError(e) });
}

function failedChecks(validation: Validation): string {
  return validation.checks
    .filter((c) => !c.passed)
    .map((c) => (c.detail ? `${c.name} (${c.detail})` : c.name))
    .join(', ');
}

/** A finished question's timings, the time outside them, and each one's share of the total. */
function timingFields(t: QuestionResult['timings']) {
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

function logFinished(
  log: Logger,
  q: QuestionJob,
  result: QuestionResult,
  detail: AnswerDetail,
): void {
  log.info(
    {
      questionId: q.id,
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
