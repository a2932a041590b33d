import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { expect, inject, it } from 'vitest';
import { createKeys, type CachedAnswer, type QuestionResult } from '@askq/shared';
import { createSemanticCache } from '../../apps/worker/src/cache/semantic-cache.js';
import { createHashEmbedder } from '../../apps/worker/src/embeddings/hash-embedder.js';
import { createChromaStore } from '../../apps/worker/src/knowledge/chroma-store.js';

// Concurrent queries on one collection go to the real Chroma server as one request: each caller
// must still get exactly the rows of its own query, in the same order as when asked alone.

const embedder = createHashEmbedder();
const topics = [
  'Redis keeps the event log of every question as a stream',
  'Chroma stores the vectors of each document chunk',
  'BullMQ workers pick questions up without polling',
  'Prometheus scrapes the worker metrics port',
  'Grafana shows queue depth and stage latency',
  'The exact cache keys answers by the normalised question',
];

it('answers each of several concurrent queries with its own rows, sent as one batch', async () => {
  const batches: number[] = [];
  const store = createChromaStore({
    url: inject('chromaUrl'),
    prefix: `t${randomUUID().slice(0, 8)}`,
    timeoutMs: 10_000,
    onBatch: (size) => batches.push(size),
  });
  const ref = { tenant: 'default', collection: 'batching' };
  const vectors = await embedder.embed(topics);
  await store.upsert(
    ref,
    embedder.name,
    topics.map((text, i) => ({
      id: `doc${i}:0`,
      documentId: `doc${i}`,
      index: 0,
      text,
      embedding: vectors[i]!,
    })),
  );
  const questions = await embedder.embed([
    'where is the event log kept',
    'what stores chunk vectors',
    'how do workers pick questions up',
    'who scrapes worker metrics',
    'what shows queue depth',
  ]);
  // Asked one at a time first: the reference rows (and the collection is now known).
  const alone = [];
  for (const q of questions) alone.push(await store.query(ref, q, 3));
  expect(batches).toEqual([1, 1, 1, 1, 1]);
  expect(alone.map((rows) => rows[0]?.documentId)).toEqual([
    'doc0',
    'doc1',
    'doc2',
    'doc3',
    'doc4',
  ]);

  batches.length = 0;
  const together = await Promise.all(questions.map((q) => store.query(ref, q, 3)));
  // The first goes at once; the four that arrive while it is out share the next request.
  expect(batches).toEqual([1, 4]);
  expect(together).toEqual(alone);
});

it('batches semantic-cache stores and lookups, each lookup finding its own entry', async () => {
  const batches: Array<[string, number]> = [];
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const redis = new Redis(inject('redisUrl'));
  const cache = createSemanticCache({
    url: inject('chromaUrl'),
    prefix,
    redis,
    recentKey: (tenant, collection) => createKeys(prefix).semanticRecent(tenant, collection),
    threshold: 0.9,
    ttlSeconds: 600,
    timeoutMs: 10_000,
    log: pino({ level: 'silent' }),
    onBatch: (operation, size) => batches.push([operation, size]),
  });
  const epoch = { version: 1, generation: 0 };
  const identity = (question: string) => ({
    tenant: 'default',
    collection: 'batching',
    question,
    model: 'fast' as const,
    topK: 4,
  });
  const vectors = await embedder.embed(topics);
  // Only the answer matters here; the cache stores the result as it is.
  const entry = (i: number): CachedAnswer => ({
    ...epoch,
    storedAt: Date.now(),
    result: { answer: `answer ${i}` } as QuestionResult,
  });
  // The first store creates the collection; the rest, sent together, are batched behind it.
  await cache.store(identity(topics[0]!), epoch, vectors[0]!, entry(0));
  await cache.flush();
  await Promise.all(
    topics.slice(1).map((t, i) => cache.store(identity(t), epoch, vectors[i + 1]!, entry(i + 1))),
  );
  // Stores resolve once lookups can see them; Chroma gets them just after.
  await cache.flush();
  expect(await redis.hlen(createKeys(prefix).semanticRecent('default', 'batching'))).toBe(0);
  const found = await Promise.all(
    topics.map((t, i) => cache.lookup(identity(t), epoch, vectors[i]!)),
  );
  expect(found.map((e) => e?.result.answer)).toEqual(topics.map((_, i) => `answer ${i}`));
  expect(batches).toEqual([
    ['cache_store', 1],
    ['cache_store', 1],
    ['cache_store', 4],
    ['cache_lookup', 1],
    ['cache_lookup', 5],
  ]);
  redis.disconnect();
});

it('answers from an entry Chroma does not have yet: stored means found, before `completed`', async () => {
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const redis = new Redis(inject('redisUrl'));
  const cache = createSemanticCache({
    // A Chroma that cannot be reached: its writes fail (logged), as a slow one's are not done yet.
    url: 'http://127.0.0.1:9',
    prefix,
    redis,
    recentKey: (tenant, collection) => createKeys(prefix).semanticRecent(tenant, collection),
    threshold: 0.9,
    ttlSeconds: 600,
    timeoutMs: 2_000,
    log: pino({ level: 'silent' }),
  });
  try {
    const epoch = { version: 1, generation: 0 };
    const identity = (question: string, model = 'fast') => ({
      tenant: 'default',
      collection: 'recent',
      question,
      model,
      topK: 4,
    });
    const [vector] = await embedder.embed([topics[0]!]);
    await cache.store(identity(topics[0]!), epoch, vector!, {
      ...epoch,
      storedAt: Date.now(),
      result: { answer: 'from the recent entries' } as QuestionResult,
    });
    const hit = await cache.lookup(identity(topics[0]!), epoch, vector!);
    expect(hit?.result.answer).toBe('from the recent entries');
    // The same filters as Chroma's: another model, or another epoch, is not answered.
    expect(await cache.lookup(identity(topics[0]!, 'smart'), epoch, vector!)).toBeUndefined();
    expect(
      await cache.lookup(identity(topics[0]!), { version: 2, generation: 0 }, vector!),
    ).toBeUndefined();
    await cache.flush();
  } finally {
    redis.disconnect();
  }
});
