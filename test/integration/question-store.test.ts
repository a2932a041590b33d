import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createQuestionSweep } from '../../apps/worker/src/question-sweep.js';
import {
  AskRequest,
  createAnswerCache,
  createAskqMetrics,
  createEventLog,
  createKeys,
  createQuestionStore,
  createTenantSlots,
  Registry,
  type QuestionResult,
  type QuestionStore,
} from '@askq/shared';

// The store against a real Redis: what each operation writes, and that a question is finished,
// released and counted exactly once whoever tries to finish it. Then the sweep over it: what it
// ends, what it leaves alone, and when it drops a question from the deadline index.
let redis: Redis;
let store: QuestionStore;
let registry: Registry;
const keys = createKeys(`store${randomUUID().slice(0, 8)}`);
const request = AskRequest.parse({ question: 'What causes tides?' });
const RESULT = {
  answer: 'The Moon [1].',
  sources: [],
  model: 'm',
  route: 'fast',
  cached: false,
  usage: { promptTokens: 1, completionTokens: 1 },
  timings: { queueMs: 0, retrievalMs: 0, generationMs: 0, validationMs: 0, totalMs: 1 },
  validation: { passed: true, checks: [] },
} satisfies QuestionResult;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  registry = new Registry();
  const events = createEventLog(redis, keys, { maxLen: 100, ttlSeconds: 60 });
  store = createQuestionStore(
    {
      redis,
      keys,
      events,
      slots: createTenantSlots(redis, keys, { staleMs: 60_000 }),
      cache: createAnswerCache(redis, keys, { ttlSeconds: 60 }),
      metrics: createAskqMetrics(registry),
      log: pino({ level: 'silent' }),
    },
    { jobTimeoutMs: 10_000, resultTtlSeconds: 60 },
  );
});
afterAll(() => redis?.disconnect());

const counted = async (outcome: string, cached = 'false') => {
  const metric = await registry.getSingleMetric('askq_questions_total')!.get();
  return metric.values.find((v) => v.labels.outcome === outcome && v.labels.cached === cached)
    ?.value;
};

describe('the question store', () => {
  it('creates a record with its first event, a deadline, a holder and a TTL', async () => {
    const id = randomUUID();
    const before = Date.now();
    await store.create(id, 'acme', request, 'inflight-key');
    const record = await store.read(id);
    expect(record).toMatchObject({
      tenant: 'acme',
      status: 'queued',
      holders: '1',
      attempts: '0',
      inFlightKey: 'inflight-key',
    });
    // JOB_TIMEOUT_MS and a quarter of it as the grace.
    const deadline = Number(record!.deadline);
    expect(deadline - Number(record!.createdAt)).toBe(12_500);
    expect(Number(await redis.zscore(keys.questionDeadlines, id))).toBe(deadline);
    expect(await redis.ttl(keys.question(id))).toBeGreaterThan(60);
    expect(await redis.ttl(keys.events(id))).toBeGreaterThan(60);
    expect(await store.due(before + 20_000, 10)).toContain(id);
    expect(await store.due(before, 10)).not.toContain(id);
  });

  it('finishes a question once: one terminal event, one release, one count', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await redis.zadd(keys.tenantSlots('acme'), Date.now(), id);
    const total = async () =>
      ((await counted('completed')) ?? 0) + ((await counted('failed')) ?? 0);
    const before = await total();
    const context = { tenant: 'acme', createdAt: Date.now() };
    const [first, second] = await Promise.all([
      store.finish(id, { status: 'completed', result: RESULT }, context),
      store.finish(id, { status: 'failed', error: { code: 'LOST', message: 'x' } }, context),
    ]);
    expect([first, second].filter(Boolean)).toHaveLength(1);
    const record = await store.read(id);
    expect(['completed', 'failed']).toContain(record!.status);
    const ends = (await redis.xrange(keys.events(id), '-', '+')).filter(([, f]) =>
      ['completed', 'failed'].includes(f[1]!),
    );
    expect(ends).toHaveLength(1);
    expect(await redis.zscore(keys.tenantSlots('acme'), id)).toBeNull();
    expect((await total()) - before).toBe(1);
    expect(await redis.ttl(keys.question(id))).toBeLessThanOrEqual(60);
    // It stays in the deadline index until the sweep sees it finished.
    expect(await redis.zscore(keys.questionDeadlines, id)).not.toBeNull();
  });

  it('lets a joined client go, and records the cancel of the last one', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await store.join(id);
    expect(await store.requestCancel(id)).toBe('detached');
    expect((await store.read(id))!.cancelRequested).toBeUndefined();
    expect(await store.requestCancel(id)).toBe('requested');
    expect((await store.read(id))!.cancelRequested).toBe('1');
  });

  it('answers a cancel of a record that is gone with `missing`, creating nothing', async () => {
    const id = randomUUID();
    expect(await store.requestCancel(id)).toBe('missing');
    expect(await redis.exists(keys.question(id))).toBe(0);
  });

  it('releases a refused question without counting it among the answered', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request, 'key-of-refused');
    await redis.zadd(keys.tenantSlots('acme'), Date.now(), id);
    const before = (await counted('failed')) ?? 0;
    const ended = await store.finish(
      id,
      { status: 'failed', error: { code: 'UNAVAILABLE', message: 'x' } },
      { tenant: 'acme', createdAt: Date.now(), inFlightKey: 'key-of-refused', uncounted: true },
    );
    expect(ended).toBe(true);
    expect((await store.read(id))!.status).toBe('failed');
    expect(await redis.zscore(keys.tenantSlots('acme'), id)).toBeNull();
    expect((await counted('failed')) ?? 0).toBe(before);
  });

  it('counts a question whose record lacks createdAt without a NaN duration', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await store.finish(id, { status: 'cancelled' }, { tenant: 'acme', createdAt: NaN });
    const metric = await registry.getSingleMetric('askq_question_duration_seconds')!.get();
    for (const v of metric.values) expect(Number.isFinite(v.value)).toBe(true);
  });

  it('writes a cached answer as a whole question, counted as cached', async () => {
    const id = randomUUID();
    const before = (await counted('completed', 'true')) ?? 0;
    await store.createAnswered(id, 'acme', request, { ...RESULT, cached: true });
    expect((await store.read(id))!.status).toBe('completed');
    const names = (await redis.xrange(keys.events(id), '-', '+')).map(([, f]) => f[1]);
    expect(names).toEqual(['sources', 'token', 'completed']);
    expect((await counted('completed', 'true')) ?? 0).toBe(before + 1);
    expect(await redis.zscore(keys.questionDeadlines, id)).toBeNull();
  });

  it('discards a question whose id was never handed out', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await store.discard(id, 'acme');
    expect(await store.read(id)).toBeUndefined();
    expect(await redis.exists(keys.events(id))).toBe(0);
    expect(await redis.zscore(keys.questionDeadlines, id)).toBeNull();
  });
});

describe('the question sweep', () => {
  const GRACE_MS = 1_000;
  const sweep = (now = Date.now()) =>
    createQuestionSweep({
      store,
      redis,
      log: pino({ level: 'silent' }),
      jobTimeoutMs: 10_000,
      lostJobGraceMs: GRACE_MS,
      jobKey: (id) => `${keys.queuePrefix}:questions:${id}`,
    }).sweep(now);
  const jobOf = (id: string) => `${keys.queuePrefix}:questions:${id}`;
  const errorOf = async (id: string) =>
    JSON.parse((await store.read(id))!.error ?? '{}') as { code?: string };
  const aged = (id: string) =>
    redis.hset(keys.question(id), 'createdAt', Date.now() - 2 * GRACE_MS);

  it('ends a question past its deadline with JOB_TIMEOUT, and drops it once it has settled', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await redis.hset(jobOf(id), 'timestamp', Date.now());
    await redis.zadd(keys.questionDeadlines, Date.now() - 1, id);
    await sweep();
    expect(await errorOf(id)).toMatchObject({ code: 'JOB_TIMEOUT' });
    // Just ended: dropping it now could outlive its terminal event on a cluster.
    expect(await redis.zscore(keys.questionDeadlines, id)).not.toBeNull();
    await sweep(Date.now() + 6_000);
    expect(await redis.zscore(keys.questionDeadlines, id)).toBeNull();
  });

  it('ends a question past its deadline `cancelled` when a cancel was recorded', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await store.requestCancel(id);
    await redis.zadd(keys.questionDeadlines, Date.now() - 1, id);
    await sweep();
    expect((await store.read(id))!.status).toBe('cancelled');
  });

  it('takes a question without a job for lost only once it is older than the grace', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await sweep();
    expect((await store.read(id))!.status).toBe('queued');
    await aged(id);
    await sweep();
    expect(await errorOf(id)).toMatchObject({ code: 'LOST' });
  });

  it('leaves an old question alone while its job exists, and ends it once the job is over', async () => {
    const id = randomUUID();
    await store.create(id, 'acme', request);
    await aged(id);
    // Waiting, delayed for a retry or running: BullMQ has set `timestamp`, not `finishedOn`.
    await redis.hset(jobOf(id), 'timestamp', Date.now() - 5_000);
    await sweep();
    await sweep();
    expect((await store.read(id))!.status).toBe('queued');
    await redis.hset(jobOf(id), 'finishedOn', Date.now());
    await sweep();
    expect(await errorOf(id)).toMatchObject({ code: 'LOST' });
  });

  it('drops an index entry whose record is gone only once it is old enough', async () => {
    const young = randomUUID();
    const old = randomUUID();
    const lifetime = 10_000 + 2_500;
    await redis.zadd(keys.questionDeadlines, Date.now() + lifetime, young);
    await redis.zadd(keys.questionDeadlines, Date.now() + lifetime - 2 * GRACE_MS, old);
    await sweep();
    // The young one's record may still be on its way (on a cluster it may land second).
    expect(await redis.zscore(keys.questionDeadlines, young)).not.toBeNull();
    expect(await redis.zscore(keys.questionDeadlines, old)).toBeNull();
  });

  it('ends every lost question of a round, across pages', async () => {
    const ids = Array.from({ length: 1_200 }, () => randomUUID());
    await Promise.all(ids.map((id) => store.create(id, 'acme', request)));
    await Promise.all(ids.map(aged));
    const { lost } = await sweep();
    expect(lost).toBeGreaterThanOrEqual(ids.length);
    const statuses = await Promise.all(ids.map((id) => redis.hget(keys.question(id), 'status')));
    expect(new Set(statuses)).toEqual(new Set(['failed']));
  });
});
