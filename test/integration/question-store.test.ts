import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
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
// released and counted exactly once whoever tries to finish it.
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
