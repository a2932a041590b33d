import {
  AppError,
  contextOf,
  toError,
  type AnswerCache,
  type AskqMetrics,
  type CacheIdentity,
  type CachedAnswer,
  type Logger,
  type QuestionJob,
  type QuestionResult,
  type Route,
  type Usage,
  type Validation,
} from '@askq/shared';
import { resultTimings, type Attempt } from './attempt.js';
import type { SemanticCache } from './cache/semantic-cache.js';
import type { ContentWork } from './content/content-work.js';
import type { Embedder } from './embeddings/embedder.js';
import type { KnowledgeStore } from './knowledge/hybrid-store.js';
import type { ChatModel } from './llm/chat-model.js';
import { citesAnyOf } from './cache/guards.js';
import { chooseRoute } from './llm/route.js';
import { generate, type GenerationOutput } from './stages/generate.js';
import { embedQuestion, retrieve } from './stages/retrieve.js';
import { standaloneQuestion, type Standalone } from './stages/standalone.js';

/** The answer given, without asking a model, when retrieval finds nothing. */
export const NO_SOURCES_ANSWER = 'No sources in this collection match the question.';

/** How answers are made. */
export interface AnsweringSettings {
  maxAnswerChars: number;
  groundingThreshold: number;
  validationMode: 'lenient' | 'strict';
  /** Best retrieval score below which `auto` routes to the smart model. */
  weakScore: number;
}

/** What answering uses. */
export interface AnsweringDeps {
  embedder: Embedder;
  store: KnowledgeStore;
  cache: AnswerCache;
  semanticCache: SemanticCache;
  model: ChatModel;
  /** CPU-bound work on the question's text, off the event loop (validation here). */
  content: ContentWork;
  metrics: AskqMetrics;
  log: Logger;
  settings: AnsweringSettings;
}

/** What the log line of a finished question says beyond its result, and what caching needs. */
export interface AnswerDetail {
  routeReason: string;
  escalated: boolean;
  /** The question's embedding, for the semantic cache. */
  vector?: number[] | undefined;
  /** The stored result a semantic hit replayed. */
  cachedFrom?: QuestionResult;
  /** Of the generation whose answer was kept. */
  firstTokenMs?: number | undefined;
}

/** A finished answer and what it took. */
export interface Answered {
  result: QuestionResult;
  detail: AnswerDetail;
}

/**
 * Answering one attempt: retrieval (and the semantic cache beside it), routing, generation,
 * validation, and one escalation to the smart model when a fast answer fails. Knows nothing of
 * BullMQ: it takes an attempt and returns an answer, or throws.
 */
export function createAnswering(deps: AnsweringDeps) {
  const { metrics, log, settings } = deps;

  /**
   * Answers with a cached result through the same stages and events as a generated one: the
   * answer streams as tokens, no model is asked, and the result says `cached: true`.
   */
  const replay = async (
    attempt: Attempt,
    cached: QuestionResult,
    vector: number[] | undefined,
  ): Promise<Answered> => {
    await attempt.stage('generation', () => {
      for (const word of cached.answer.split(/(?<=\S)(?=\s)/)) {
        attempt.sink.token(word, attempt.number);
      }
      return Promise.resolve();
    });
    const validation = await attempt.stage('validation', () => Promise.resolve(cached.validation));
    return {
      result: {
        ...cached,
        validation,
        cached: true,
        usage: { promptTokens: 0, completionTokens: 0 },
        timings: resultTimings(attempt.timings),
      },
      detail: { routeReason: 'cached', escalated: false, vector, cachedFrom: cached },
    };
  };

  const generateAnswer = (
    attempt: Attempt,
    sources: QuestionResult['sources'],
    route: Route,
    standalone: Standalone,
  ) => {
    const onToken = (text: string) => attempt.sink.token(text, attempt.number);
    if (sources.length === 0) {
      // Nothing to ground an answer in: say so instead of paying a model to guess.
      onToken(NO_SOURCES_ANSWER);
      const none: GenerationOutput = {
        answer: NO_SOURCES_ANSWER,
        model: 'none',
        usage: { promptTokens: 0, completionTokens: 0 },
      };
      return Promise.resolve(none);
    }
    return generate(
      {
        question: attempt.q.question,
        standalone: standalone.text,
        history: attempt.q.history,
        sources,
        route,
      },
      { model: deps.model, onToken, maxChars: settings.maxAnswerChars },
      attempt.signal,
    );
  };

  const countTokens = (model: string, usage: Usage) => {
    metrics.tokens.labels(model, 'prompt').inc(usage.promptTokens);
    metrics.tokens.labels(model, 'completion').inc(usage.completionTokens);
  };

  /** One generation and its validation, with their metrics. */
  const generateAndValidate = async (
    attempt: Attempt,
    sources: QuestionResult['sources'],
    route: Route,
    standalone: Standalone,
  ) => {
    const output = await attempt.stage('generation', () =>
      generateAnswer(attempt, sources, route, standalone),
    );
    if (output.model !== 'none') {
      if (output.firstTokenMs !== undefined) {
        metrics.firstToken.labels(output.model).observe(output.firstTokenMs / 1_000);
      }
      countTokens(output.model, output.usage);
    }
    const validation = await attempt.stage('validation', () =>
      deps.content.validate(
        {
          answer: output.answer,
          sources,
          maxAnswerChars: settings.maxAnswerChars,
          groundingThreshold: settings.groundingThreshold,
          ...(output.truncated ? { truncated: true } : {}),
        },
        attempt.signal,
      ),
    );
    return { output, validation };
  };

  /**
   * The sources, or a semantic-cache hit that makes them unnecessary. A follow-up is looked for
   * in its standalone form; the semantic cache is still keyed by the conversation (identityOf),
   * so only a question asked after the same turns can answer it.
   */
  const retrieval = (attempt: Attempt) =>
    attempt.stage('retrieval', async () => {
      const { epoch } = attempt;
      const standalone = await standaloneQuestion(attempt.q, deps, attempt.signal);
      if (standalone.usage) countTokens(deps.model.modelFor('fast'), standalone.usage);
      const q = { ...attempt.q, question: standalone.text };
      const vector = await embedQuestion(q, attempt.collection, deps, attempt.signal);
      if (!vector) return { sources: [], standalone };
      if (!epoch) return { sources: await retrieve(q, vector, deps), vector, standalone };
      // The semantic layer is checked here, before any model is asked (SPEC 6). The documents
      // are searched at the same time rather than after a miss: a miss, the usual outcome, then
      // waits for the slower of the two instead of both. A hit does not need them, even failed.
      const [hit, retrieved] = await Promise.all([
        deps.semanticCache.lookup(identityOf(attempt.q), epoch, vector),
        retrieve(q, vector, deps).then(
          (sources) => ({ sources }),
          (error: unknown) => ({ error }),
        ),
      ]);
      // A hit whose answer rests on none of the documents this question retrieves is wrong,
      // whatever its guard said: counted, and answered afresh.
      const wrong = hit && 'sources' in retrieved && !citesAnyOf(hit.result, retrieved.sources);
      if (wrong) {
        log.warn(
          { questionId: attempt.q.id },
          'semantic cache hit refused: its sources are not this question’s',
        );
      }
      const served = wrong ? undefined : hit;
      metrics.cacheLookups.labels('semantic', wrong ? 'wrong' : served ? 'hit' : 'miss').inc();
      deps.cache
        .recordLookup(attempt.q.tenant, 'semantic', served)
        .catch((e: unknown) => log.warn({ err: toError(e) }, 'cache stats not recorded'));
      if (served) return { sources: served.result.sources, vector, hit: served, standalone };
      if ('error' in retrieved) throw retrieved.error;
      return { sources: retrieved.sources, vector, standalone };
    });

  return {
    async answer(attempt: Attempt): Promise<Answered> {
      const found = await retrieval(attempt);
      const { sources, standalone } = found;
      if (standalone.how !== 'alone') {
        log.info(
          { questionId: attempt.q.id, how: standalone.how, turns: attempt.q.history?.length },
          'follow-up made standalone for retrieval',
        );
      }
      attempt.sink.send({ event: 'sources', data: { sources } });
      if (found.hit) return replay(attempt, found.hit.result, found.vector);

      const routed = chooseRoute({
        question: standalone.text,
        requested: attempt.q.model,
        sources,
        weakScore: settings.weakScore,
      });
      let route: Route = routed.route;
      const detail: AnswerDetail = {
        routeReason: routed.reason,
        escalated: false,
        vector: found.vector,
      };
      let { output, validation } = await generateAndValidate(attempt, sources, route, standalone);
      detail.firstTokenMs = output.firstTokenMs;
      let usage: Usage = sumUsage(output.usage, standalone.usage);
      if (!validation.passed && route === 'fast' && sources.length > 0) {
        // One escalation with the same sources; clients drop the tokens streamed so far.
        attempt.sink.send({
          event: 'retry',
          data: { attempt: attempt.number, reason: 'escalation' },
        });
        route = 'smart';
        detail.escalated = true;
        ({ output, validation } = await generateAndValidate(attempt, sources, route, standalone));
        usage = sumUsage(usage, output.usage);
      }
      if (!validation.passed && settings.validationMode === 'strict') {
        throw new AppError(
          'VALIDATION_FAILED',
          `the answer failed validation: ${failedChecks(validation)}`,
        );
      }
      return {
        result: {
          answer: output.answer,
          sources,
          model: output.model,
          route,
          cached: false,
          usage,
          timings: resultTimings(attempt.timings),
          validation,
        },
        detail,
      };
    },

    /**
     * Stores a validated answer in both cache layers, side by side (independent stores, neither
     * ever throws), before `completed`: a client that asks again on seeing it is answered from
     * them. Only answers that passed validation are ever served again (SPEC 6).
     */
    async remember(attempt: Attempt, answered: Answered): Promise<void> {
      const { epoch, q } = attempt;
      if (!epoch || !answered.result.validation.passed) return;
      const { result, detail } = answered;
      const exact = deps.cache
        .store(identityOf(q), epoch, detail.cachedFrom ?? result)
        .catch((e: unknown) => {
          log.warn({ err: toError(e), questionId: q.id }, 'could not cache the answer');
        });
      const semantic =
        !detail.cachedFrom && detail.vector
          ? deps.semanticCache.store(identityOf(q), epoch, detail.vector, {
              ...epoch,
              storedAt: Date.now(),
              result,
            } satisfies CachedAnswer)
          : undefined;
      await Promise.all([exact, semantic]);
    },
  };
}

/** What makes two questions one for the caches: the same text after the same conversation. */
export function identityOf(q: QuestionJob): CacheIdentity {
  return {
    tenant: q.tenant,
    collection: q.collection,
    question: q.question,
    model: q.model,
    topK: q.topK,
    context: contextOf(q.history),
  };
}

function sumUsage(a: Usage, b: Usage | undefined): Usage {
  if (!b) return a;
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
  };
}

function failedChecks(validation: Validation): string {
  return validation.checks
    .filter((c) => !c.passed)
    .map((c) => (c.detail ? `${c.name} (${c.detail})` : c.name))
    .join(', ');
}
