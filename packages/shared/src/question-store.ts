import type { AnswerCache } from './cache.js';
import { toError } from './errors.js';
import type { AppendOptions, AskEvent, EventLog } from './events.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import type { AskqMetrics } from './metrics.js';
import type { PublicError, QuestionResult, QuestionStatus, ResolvedAsk } from './question.js';
import { TERMINAL_STATUSES } from './question.js';
import type { QuestionRecordFields } from './question-record.js';
import type { RedisClient } from './redis.js';
import type { TenantSlots } from './tenant-slots.js';
import { defineScript } from './redis-script.js';

/** How a question ends. */
export type Outcome =
  | { status: 'completed'; result: QuestionResult; cached?: boolean }
  | { status: 'failed'; error: PublicError }
  | { status: 'cancelled' };

/** Appends an event with record fields; resolves whether it landed (the log refuses late ones). */
export type Appender = (event: AskEvent, options: AppendOptions) => Promise<boolean>;

/** What finishing a question needs to know of it (from its job, or its record). */
export interface FinishContext {
  tenant: string;
  /** Epoch ms at enqueue: the question's duration runs from it. */
  createdAt: number;
  inFlightKey?: string | undefined;
  /**
   * How the terminal event is written: the attempt's event sink, so that it follows the tokens
   * already queued there. Default: straight to the log.
   */
  append?: Appender;
  /**
   * The question was never accepted (its job could not be queued, or its tenant had no slot):
   * its end is not counted among the questions answered.
   */
  uncounted?: boolean;
}

/** What a client asking to cancel achieved; `missing`: the record is gone (it expired). */
export type CancelRequest = 'detached' | 'requested' | 'missing';

/** A question as the store reads it back. */
export type StoredQuestion = Partial<QuestionRecordFields> & { status?: QuestionStatus };

/**
 * The one owner of question records (their hash in Redis): it builds every field written to one,
 * so that a record is never half-updated by code that does not know its rules. It creates a
 * record with its first event and its deadline, names the fields of each transition (the
 * worker's event sink and the log's append script write them, as given), and finishes a
 * question exactly once: the terminal event, then the release of the tenant's slot and of the
 * in-flight key and the outcome's metrics, all after the one append that landed. Whoever
 * finishes it (the API for a cancel or a cache hit, a worker's attempt, the sweep) goes through
 * `finish`; a second finisher's append is refused, and it does nothing else.
 *
 * The deadline index lists every question from its creation until the sweep has read it
 * finished (or gone), so it holds finished questions, and refused ones that could not be
 * removed, for up to one sweep after their end.
 */
export interface QuestionStore {
  /** Writes a new question's record, its `queued` event and its deadline, in one round trip. */
  create(
    id: string,
    tenant: string,
    request: ResolvedAsk,
    inFlightKey?: string,
  ): Promise<QuestionRecordFields>;
  /**
   * Writes a question answered at once (the exact cache): its record and whole log, ending in
   * `completed`, counted like any other.
   */
  createAnswered(
    id: string,
    tenant: string,
    request: ResolvedAsk,
    result: QuestionResult,
  ): Promise<QuestionRecordFields>;
  /** Removes a question whose id was never handed out, and gives its slot back. */
  discard(id: string, tenant: string): Promise<void>;
  read(id: string): Promise<StoredQuestion | undefined>;
  /** One more client asked this question (it joined while the question ran). */
  join(id: string): Promise<void>;
  /**
   * A client asks to cancel: when others still hold the question it only detaches that client
   * (`detached`); otherwise the cancel is recorded (`requested`), durably, before anything else:
   * the question then ends `cancelled` whoever ends it. Each call lets go of one holder, whoever
   * sends it: the holders are counted, not named.
   */
  requestCancel(id: string): Promise<CancelRequest>;
  /** The record fields of an attempt that starts. */
  activeFields(attempt: number, startedAt: number): Record<string, string | number>;
  /** The record fields of a question that waits for another attempt. */
  retryFields(nextAttempt: number): Record<string, string | number>;
  /** The record fields of a stage that starts. */
  stageFields(stage: string): Record<string, string | number>;
  /** Ends a question; resolves whether this call ended it (false: it had ended already). */
  finish(id: string, outcome: Outcome, context: FinishContext): Promise<boolean>;
  /**
   * Indexed questions whose deadline is at or before `until`, oldest first: open ones, and
   * finished ones the sweep has not dropped yet.
   */
  due(until: number, limit: number, offset?: number): Promise<string[]>;
  /** Indexed questions (open, or finished and not yet dropped) with their deadlines, soonest first. */
  open(limit: number, offset?: number): Promise<Array<{ id: string; deadline: number }>>;
  /** Drops an id from the deadline index (its record is gone or finished). */
  forget(id: string): Promise<void>;
}

/**
 * What a question's deadline allows beyond JOB_TIMEOUT_MS: the worker running it fails it with
 * JOB_TIMEOUT at the limit itself, and the sweep steps in only for questions no worker ends. A
 * quarter of the limit, at most 30 s.
 */
export function deadlineGraceMs(jobTimeoutMs: number): number {
  return Math.min(30_000, Math.ceil(jobTimeoutMs / 4));
}

/** Options of {@link createQuestionStore}. */
export interface QuestionStoreOptions {
  /** JOB_TIMEOUT_MS: a question must end this long after it was asked. */
  jobTimeoutMs: number;
  /** RESULT_TTL_SECONDS: how long a finished question is kept. */
  resultTtlSeconds: number;
}

// KEYS: the record. Returns 1 when others still hold the question (the caller is detached),
// 0 when the cancel was recorded, -1 when there is no record (it expired, or was never written):
// nothing is created then, not even a stray `holders` field.
const REQUEST_CANCEL_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local holders = redis.call('HINCRBY', KEYS[1], 'holders', -1)
if holders > 0 then return 1 end
redis.call('HSET', KEYS[1], 'cancelRequested', '1')
return 0
`;

/** Builds the store over clients the caller owns. */
export function createQuestionStore(
  deps: {
    redis: RedisClient;
    keys: Keys;
    events: EventLog;
    slots: TenantSlots;
    cache: AnswerCache;
    metrics: AskqMetrics;
    log: Logger;
  },
  options: QuestionStoreOptions,
): QuestionStore {
  const { redis, keys, events, metrics, log } = deps;
  const requestCancelScript = defineScript<[], number>(redis, 'askqRequestCancel', {
    keys: 1,
    lua: REQUEST_CANCEL_LUA,
  });

  const fieldsOf = (
    tenant: string,
    request: ResolvedAsk,
    createdAt: number,
  ): QuestionRecordFields => ({
    tenant,
    question: request.question,
    collection: request.collection,
    model: request.model,
    topK: String(request.topK),
    cache: String(request.cache),
    ...(request.history?.length ? { history: JSON.stringify(request.history) } : {}),
    ...(request.previousQuestionId ? { previousQuestionId: request.previousQuestionId } : {}),
    status: 'queued',
    createdAt: String(createdAt),
    attempts: '0',
    holders: '1',
  });

  const count = (outcome: Outcome, createdAt: number, finishedAt: number) => {
    const cached = outcome.status === 'completed' && outcome.cached === true;
    metrics.questions.labels(outcome.status, String(cached)).inc();
    // A record from an older version (or a damaged one) may lack createdAt: no duration then,
    // rather than NaN in the histogram's sum.
    if (!Number.isFinite(createdAt)) return;
    metrics.questionDuration
      .labels(outcome.status)
      .observe(Math.max(0, finishedAt - createdAt) / 1_000);
  };

  const direct =
    (id: string): Appender =>
    async (event, appendOptions) =>
      (await events.append(id, event, appendOptions)) !== null;

  return {
    async create(id, tenant, request, inFlightKey) {
      const createdAt = Date.now();
      const deadline = createdAt + options.jobTimeoutMs + deadlineGraceMs(options.jobTimeoutMs);
      const record: QuestionRecordFields = {
        ...fieldsOf(tenant, request, createdAt),
        deadline: String(deadline),
        ...(inFlightKey ? { inFlightKey } : {}),
      };
      // Separate keys (on a cluster, separate slots), sent together: one round trip. A record
      // without its deadline would be a question the sweep never ends, so both must land for
      // the question to be accepted (the caller discards it otherwise).
      await Promise.all([
        events.append(
          id,
          { event: 'status', data: { status: 'queued', attempt: 1 } },
          {
            set: { ...record },
            // Expires even if it never ends (it always does: the worker or the sweep ends it).
            ttlSeconds: Math.ceil((deadline - createdAt) / 1_000) + options.resultTtlSeconds,
          },
        ),
        redis.zadd(keys.questionDeadlines, deadline, id),
      ]);
      return record;
    },

    async createAnswered(id, tenant, request, result) {
      const createdAt = Date.now();
      const record: QuestionRecordFields = {
        ...fieldsOf(tenant, request, createdAt),
        status: 'completed',
        startedAt: String(createdAt),
      };
      const finishedAt = Date.now();
      await events.appendAll(id, [
        {
          event: { event: 'sources', data: { sources: result.sources } },
          options: { set: { ...record, status: 'active' } },
        },
        { event: { event: 'token', data: { text: result.answer, attempt: 1 } } },
        {
          event: { event: 'completed', data: { result } },
          options: {
            set: { status: 'completed', finishedAt, result: JSON.stringify(result) },
          },
        },
      ]);
      count({ status: 'completed', result, cached: true }, createdAt, finishedAt);
      return { ...record, finishedAt: String(finishedAt) };
    },

    async discard(id, tenant) {
      await Promise.all([
        redis.del(keys.question(id), keys.events(id)),
        redis.zrem(keys.questionDeadlines, id),
        deps.slots.release(tenant, id),
      ]).catch(() => undefined);
    },

    async read(id) {
      const hash = await redis.hgetall(keys.question(id));
      return Object.keys(hash).length === 0 ? undefined : hash;
    },

    async join(id) {
      await redis.hincrby(keys.question(id), 'holders', 1);
    },

    async requestCancel(id) {
      const answer = await requestCancelScript([keys.question(id)], []);
      return answer === 1 ? 'detached' : answer === -1 ? 'missing' : 'requested';
    },

    activeFields: (attempt, startedAt) => ({ status: 'active', startedAt, attempts: attempt }),

    retryFields: (nextAttempt) => ({ status: 'queued', stage: '', retryAttempt: nextAttempt }),

    stageFields: (stage) => ({ stage }),

    async finish(id, outcome, context) {
      const finishedAt = Date.now();
      const end = { status: outcome.status, finishedAt, stage: '' };
      const [event, set]: [AskEvent, Record<string, string | number>] =
        outcome.status === 'completed'
          ? [
              { event: 'completed', data: { result: outcome.result } },
              { ...end, result: JSON.stringify(outcome.result) },
            ]
          : outcome.status === 'failed'
            ? [
                { event: 'failed', data: { error: outcome.error } },
                { ...end, error: JSON.stringify(outcome.error) },
              ]
            : [{ event: 'cancelled', data: {} }, end];
      const landed = await (context.append ?? direct(id))(event, { set });
      if (!landed) return false;
      // The question is over: its slot and in-flight key go, and identical questions asked from
      // now on start their own run. Its deadline stays in the index: the sweep drops it once it
      // sees the record finished. Removing it here could outlive the terminal event itself: on a
      // cluster the index and the record live on different masters, and a failover of the
      // record's master may lose the event while the removal stays; the question would then be
      // open with nothing left to end it.
      await Promise.all([
        deps.slots.release(context.tenant, id),
        context.inFlightKey ? deps.cache.releaseInFlight(context.inFlightKey, id) : undefined,
      ]).catch((e: unknown) => {
        // Each expires by itself (slots go stale, registrations have a TTL): a failure here only
        // holds them a little longer.
        log.warn({ err: toError(e), questionId: id }, 'could not release a finished question');
      });
      // Counted once released: a dashboard that sees the question done sees its slot free too.
      if (!context.uncounted) count(outcome, context.createdAt, finishedAt);
      return true;
    },

    async due(until, limit, offset = 0) {
      return redis.zrangebyscore(keys.questionDeadlines, '-inf', until, 'LIMIT', offset, limit);
    },

    async open(limit, offset = 0) {
      const flat = await redis.zrangebyscore(
        keys.questionDeadlines,
        '-inf',
        '+inf',
        'WITHSCORES',
        'LIMIT',
        offset,
        limit,
      );
      const entries: Array<{ id: string; deadline: number }> = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        entries.push({ id: flat[i]!, deadline: Number(flat[i + 1]) });
      }
      return entries;
    },

    async forget(id) {
      await redis.zrem(keys.questionDeadlines, id);
    },
  };
}

/** Whether a stored status is terminal. */
export function isFinished(status: string | undefined): boolean {
  return status !== undefined && TERMINAL_STATUSES.has(status as QuestionStatus);
}
