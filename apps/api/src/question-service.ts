import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { lastEpochs } from './epoch-guess.js';
import { toUnavailable, unavailable } from './unavailable.js';
import { createFollowUps } from './follow-ups.js';
import type { Admission, LoadShedder } from './load-shedding.js';
import type { RedisClient } from '@askq/shared';
import {
  AppError,
  JOBS,
  QUESTION_ID,
  TERMINAL_STATUSES,
  shardOf,
  toError,
  toPublicError,
  toQuestionView,
  contextOf,
  type AnswerCache,
  type TenantSlots,
  type AskRequest,
  type HistoryLimits,
  type ResolvedAsk,
  type CachedAnswer,
  type CacheIdentity,
  type QuestionResult,
  type AskqMetrics,
  type Keys,
  type Logger,
  type QuestionJob,
  type QuestionRecordFields,
  type QuestionStore,
  type QuestionView,
} from '@askq/shared';

/** How a question was taken: queued for a worker, answered from the cache, or joined to a running one. */
export type AskOutcome = { kind: 'queued' | 'cached' | 'coalesced'; view: QuestionView };

/** What the API does with questions, free of HTTP. */
export interface QuestionService {
  /**
   * `admitted` settles with the rate limit's decision: nothing is written before it resolves, and
   * the cache is read meanwhile, in the same round trip.
   */
  ask(tenant: string, request: AskRequest, admitted?: Promise<void>): Promise<AskOutcome>;
  get(tenant: string, id: string): Promise<QuestionView>;
  /**
   * Cancels a question: `cancelled` at once when it was queued, `cancelling` when it is running,
   * `detached` when other clients still hold it (it goes on for them).
   */
  cancel(
    tenant: string,
    id: string,
  ): Promise<{ view: QuestionView; outcome: 'cancelled' | 'cancelling' | 'detached' }>;
}

/** Builds the question service over clients the caller owns. */
export function createQuestionService(deps: {
  redis: RedisClient;
  /** The question queue's shards; a question's id picks its shard. */
  queues: Array<Queue<QuestionJob>>;
  keys: Keys;
  log: Logger;
  metrics: AskqMetrics;
  cache: AnswerCache;
  /** How long an in-flight registration lives if its question never releases it. */
  inFlightTtlMs: number;
  slots: TenantSlots;
  /** Questions a tenant may have queued or running (SPEC 7). */
  maxInFlight: number;
  /** Refuses new questions the fleet could not answer in time (SPEC 7). */
  shedder: LoadShedder;
  /** The owner of question records: every write to one goes through it. */
  store: QuestionStore;
  /** How much of a conversation a follow-up carries. */
  history: HistoryLimits;
}): QuestionService {
  const { redis, queues, keys, log, metrics, cache, inFlightTtlMs, slots, store } = deps;
  const queueOf = (id: string) => queues[shardOf(id, queues.length)]!;
  const epochs = lastEpochs();

  /** A tenant's question, as its view and as stored. */
  const read = async (tenant: string, id: string) => {
    if (!QUESTION_ID.test(id)) throw notFound(id);
    const stored = await store.read(id).catch(unavailable);
    const view = stored && toQuestionView(id, stored);
    // Another tenant's question is reported as missing, not forbidden: ids must not leak.
    if (!view || stored.tenant !== tenant) throw notFound(id);
    return { view, stored };
  };
  const get = async (tenant: string, id: string): Promise<QuestionView> =>
    (await read(tenant, id)).view;

  /**
   * Writes a new question's record, its `queued` event and its deadline. They exist before the
   * job, so a worker never sees a job without its record and a client can open the stream the
   * moment it has the id.
   */
  const createRecord = (tenant: string, request: ResolvedAsk, id: string, inFlightKey?: string) =>
    store.create(id, tenant, request, inFlightKey).catch(unavailable);

  /** Removes a question whose id was never handed out, and gives its slot (if any) back. */
  const discard = (tenant: string, id: string) => store.discard(id, tenant);

  /**
   * Writes the record, takes a tenant slot and (for a cached question) registers it in flight,
   * together: independent writes, one round trip. Whatever was taken for a record that could not
   * be written is given back at once, and whatever of the record did land (its log, its deadline
   * entry: separate keys) is removed, best effort; the rest expires.
   */
  const accept = async (tenant: string, request: ResolvedAsk, id: string, inFlightKey?: string) => {
    const [created, admitted, claimed] = await Promise.allSettled([
      createRecord(tenant, request, id, inFlightKey),
      slots.admit(tenant, id, deps.maxInFlight),
      inFlightKey ? cache.claimInFlight(inFlightKey, id, inFlightTtlMs) : undefined,
    ]);
    if (created.status === 'rejected') {
      await Promise.all([
        discard(tenant, id),
        inFlightKey && claimed.status === 'fulfilled' && claimed.value === id
          ? cache.releaseInFlight(inFlightKey, id)
          : undefined,
      ]).catch(() => undefined);
      throw created.reason;
    }
    return { record: created.value, admitted, claimed };
  };

  /**
   * Queues the job of a question whose slot was asked for. If the slot was refused or the job
   * cannot be queued the question was not accepted: its traces go, unless it was registered in
   * flight, where others may have joined it already; then it ends `failed` with the same error,
   * so they are told rather than left waiting.
   */
  const submit = async (
    tenant: string,
    request: ResolvedAsk,
    id: string,
    { record, admitted }: Awaited<ReturnType<typeof accept>>,
    queueing: Admission | undefined,
  ): Promise<QuestionView> => {
    try {
      if (admitted.status === 'rejected') throw admitted.reason;
      if (!admitted.value) {
        throw new AppError(
          'RATE_LIMITED',
          `at most ${deps.maxInFlight} questions may be queued or running at once`,
          { retryAfterSeconds: 1 },
        );
      }
      // Not pipelined with the record: after a SCRIPT FLUSH ioredis re-sends a refused EVALSHA
      // behind later commands, which could land the record after the job; a worker would skip it.
      const payload: QuestionJob = { id, tenant, ...request, enqueuedAt: Number(record.createdAt) };
      await queueOf(id).add(JOBS.question.name, payload, { jobId: id });
      queueing?.added();
    } catch (e) {
      await abandon(tenant, id, record, e);
      unavailable(e);
    }
    log.info({ questionId: id, tenant, length: request.question.length }, 'question queued');
    return viewOf(id, record);
  };

  const abandon = async (tenant: string, id: string, record: QuestionRecordFields, e: unknown) => {
    if (!record.inFlightKey) return discard(tenant, id);
    const error = toPublicError(e instanceof AppError ? e : toUnavailable(e)).body.error;
    await store
      .finish(
        id,
        { status: 'failed', error },
        {
          tenant,
          createdAt: Number(record.createdAt),
          inFlightKey: record.inFlightKey,
          // Refused, not answered: the questions' metrics count accepted ones.
          uncounted: true,
        },
      )
      .catch(() => undefined);
  };

  /**
   * The question `owner` as a view a newcomer may join: it exists, it is the tenant's, it has not
   * finished and no cancel was recorded for it (it is about to end `cancelled`: a newcomer starts
   * its own run and takes the in-flight registration over).
   */
  const joinable = async (tenant: string, owner: string | null) => {
    if (owner === null || !QUESTION_ID.test(owner)) return undefined;
    const stored = await store.read(owner).catch(() => undefined);
    if (!stored || stored.tenant !== tenant || stored.cancelRequested === '1') return undefined;
    const view = toQuestionView(owner, stored);
    return view && !TERMINAL_STATUSES.has(view.status) ? view : undefined;
  };

  /**
   * A question answered from the exact cache still gets an id, a record and an event log (its
   * sources, the answer as one token event, and `completed`), so GET and the stream work as for
   * any other question.
   */
  const answerFromCache = async (
    tenant: string,
    request: ResolvedAsk,
    hit: CachedAnswer,
  ): Promise<QuestionView> => {
    const started = performance.now();
    const id = randomUUID();
    const result: QuestionResult = {
      ...hit.result,
      cached: true,
      // Nothing was spent on this answer.
      usage: { promptTokens: 0, completionTokens: 0 },
      timings: { queueMs: 0, retrievalMs: 0, generationMs: 0, validationMs: 0, totalMs: 0 },
    };
    result.timings.totalMs = Math.round(performance.now() - started);
    const record = await store.createAnswered(id, tenant, request, result).catch(unavailable);
    log.info({ questionId: id, tenant, cached: 'exact' }, 'question answered from cache');
    return { ...viewOf(id, record), result };
  };

  /** The newcomer holds the running question too: its own cancel only lets go of it. */
  const joined = async (tenant: string, view: QuestionView): Promise<AskOutcome> => {
    await store.join(view.id).catch(unavailable);
    log.info({ questionId: view.id, tenant }, 'question joined one in flight');
    return { kind: 'coalesced', view };
  };

  const followUps = createFollowUps({ read, bounds: deps.history });

  return {
    async ask(tenant, asked, admitted = Promise.resolve()) {
      let request: ResolvedAsk;
      try {
        request = await followUps.resolve(tenant, asked);
      } catch (e) {
        // A refused request is told so first, as for any other bad request.
        await admitted;
        throw e;
      }
      const identity: CacheIdentity = { tenant, ...request, context: contextOf(request.history) };
      // The backlog is read alongside the other reads; it only matters for a question that will
      // be queued (not a cache hit, not one joining a question already running). The shedder
      // decides before anything is written, so a refused question leaves nothing behind; its
      // admission counts until the job is queued, and is given back (finally) if it never is.
      const backlog = deps.shedder.backlog();
      backlog.catch(() => undefined);
      const admitToQueue = async (): Promise<Admission | undefined> => {
        const read = await backlog.catch(() => undefined);
        // Unread (Redis trouble): the writes that follow answer for it.
        return read && deps.shedder.admit(read);
      };
      if (!request.cache) {
        await admitted;
        const queueing = await admitToQueue();
        try {
          const id = randomUUID();
          const accepted = await accept(tenant, request, id);
          return { kind: 'queued', view: await submit(tenant, request, id, accepted, queueing) };
        } finally {
          queueing?.abandoned();
        }
      }

      // The in-flight registration is keyed by the epoch the lookup returns; epochs rarely change,
      // so the key of the last one seen is read in the same round trip, and used if it still holds.
      const guess = epochs.last(identity);
      const guessedKey = guess && cache.inFlightKey(identity, guess);
      const [looked, admission, guessedOwner] = await Promise.allSettled([
        cache.lookup(identity),
        admitted,
        guessedKey ? cache.inFlightOwner(guessedKey) : undefined,
      ]);
      if (admission.status === 'rejected') throw admission.reason;
      if (looked.status === 'rejected') unavailable(looked.reason);
      const { epoch, hit } = looked.value;
      epochs.remember(identity, epoch);
      metrics.cacheLookups.labels('exact', hit ? 'hit' : 'miss').inc();
      cache
        .recordLookup(tenant, 'exact', hit)
        .catch((e: unknown) => log.warn({ err: toError(e) }, 'cache stats not recorded'));
      if (hit) return { kind: 'cached', view: await answerFromCache(tenant, request, hit) };

      // The same question already running (same epoch, so the same documents): join it.
      const key = cache.inFlightKey(identity, epoch);
      const owner =
        key === guessedKey && guessedOwner.status === 'fulfilled'
          ? guessedOwner.value
          : await cache.inFlightOwner(key).catch(unavailable);
      const running = await joinable(tenant, owner ?? null);
      if (running) return joined(tenant, running);

      const queueing = await admitToQueue();
      try {
        // Registered in the same round trip as the record is written. On one server the record's
        // command goes first on the same connection, so it lands first; on a cluster the two may
        // land in either order. A newcomer that sees a registration whose record is missing or
        // finished takes it over: at worst one question runs twice, never a wrong answer.
        const id = randomUUID();
        const accepted = await accept(tenant, request, id, key);
        if (accepted.claimed.status === 'rejected') {
          await discard(tenant, id);
          unavailable(accepted.claimed.reason);
        }
        const claimedBy = accepted.claimed.value ?? id;
        if (claimedBy !== id) {
          const other = await joinable(tenant, claimedBy);
          if (other) {
            await discard(tenant, id);
            return joined(tenant, other);
          }
          await cache.replaceInFlight(key, claimedBy, id, inFlightTtlMs).catch(() => undefined);
        }
        return { kind: 'queued', view: await submit(tenant, request, id, accepted, queueing) };
      } finally {
        queueing?.abandoned();
      }
    },

    get,

    async cancel(tenant, id) {
      const view = await get(tenant, id);
      if (TERMINAL_STATUSES.has(view.status)) {
        throw new AppError('CONFLICT', `question ${id} is already ${view.status}`);
      }
      // Recorded first, durably: from here the question ends `cancelled` whoever ends it (the
      // worker holding it, this process below, or the sweep if both fail), so a cancel that
      // answers 202 is never lost. A client that joined the question only lets go of it.
      const request = await store.requestCancel(id).catch(unavailable);
      // It expired between the read above and the cancel.
      if (request === 'missing') throw notFound(id);
      if (request === 'detached') {
        log.info({ questionId: id }, 'a client let go of a question others still hold');
        return { view, outcome: 'detached' };
      }
      const queued = await removeQueuedJob(id);
      if (queued) {
        const stored = await store.read(id).catch(() => undefined);
        const ended = await store
          .finish(
            id,
            { status: 'cancelled' },
            {
              tenant,
              createdAt: Date.parse(view.createdAt),
              inFlightKey: stored?.inFlightKey,
            },
          )
          .catch((e: unknown) => {
            log.warn({ err: toError(e), questionId: id }, 'cancelled event not written yet');
            return false;
          });
        if (ended) return { view: await get(tenant, id), outcome: 'cancelled' };
      }
      // Only the process holding the job can abort it, and we do not know which one: broadcast.
      // If the broadcast is missed, the worker's next event append is refused (the cancel is in
      // the record) and it stops there, within a token batch.
      await redis.publish(keys.cancelChannel, id).catch((e: unknown) => {
        log.warn({ err: toError(e), questionId: id }, 'cancel broadcast failed; the record has it');
      });
      log.info({ questionId: id }, 'cancel requested');
      return { view: await get(tenant, id).catch(() => view), outcome: 'cancelling' };
    },
  };

  /** Removes a question's job if it is still waiting; false if a worker holds it (or it is gone). */
  async function removeQueuedJob(id: string): Promise<boolean> {
    try {
      const job = await queueOf(id).getJob(id);
      if (!job) return false;
      const state = await job.getState();
      if (!['waiting', 'delayed', 'prioritized', 'paused', 'waiting-children'].includes(state)) {
        return false;
      }
      // remove() refuses a job that a worker has just locked; then it is active after all.
      await job.remove();
      return true;
    } catch (e) {
      log.debug({ err: toError(e), questionId: id }, 'queued job could not be removed');
      return false;
    }
  }
}

function viewOf(id: string, record: QuestionRecordFields): QuestionView {
  const view = toQuestionView(id, record);
  if (!view) throw new AppError('INTERNAL', 'question record is incomplete');
  return view;
}

function notFound(id: string): AppError {
  return new AppError('NOT_FOUND', `question ${id} not found`);
}
