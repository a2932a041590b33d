import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  createCollectionRegistry,
  createKeys,
  TOMBSTONE_KEEP_MS,
  type CollectionRegistry,
} from '@askq/shared';

// The ordering rules behind "the last change accepted wins", against a real Redis.
let redis: Redis;
let registry: CollectionRegistry;
const keys = createKeys(`t${randomUUID().slice(0, 8)}`);

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  registry = createCollectionRegistry(redis, keys, {
    ttlMs: 5_000,
    waitMs: 5_000,
  });
});
afterAll(async () => {
  await redis?.quit();
});

it('counts documents and chunks, bumps the version per change, and refuses older changes', async () => {
  await registry.claim('t', 'c', { name: 'hash', dimension: 8 });
  const first = await registry.reserveSeqs('t', 'c', 3);
  expect(await registry.applyDocument('t', 'c', 'a', first, 4)).toEqual({
    applied: true,
    version: 1,
  });
  expect(await registry.applyDocument('t', 'c', 'b', first + 1, 2)).toEqual({
    applied: true,
    version: 2,
  });
  // A newer change to `a` (shorter), then the older one arriving late: it must not undo it.
  expect(await registry.applyDocument('t', 'c', 'a', first + 2, 1)).toEqual({
    applied: true,
    version: 3,
  });
  expect(await registry.applyDocument('t', 'c', 'a', first, 4)).toEqual({
    applied: false,
    version: 3,
  });
  expect(await registry.describe('t', 'c')).toEqual({
    version: 3,
    documents: 2,
    chunks: 3,
    embedder: 'hash',
    dimension: 8,
  });

  // A deletion, then a late upsert accepted before it: the document stays deleted.
  const [del, late] = [await registry.reserveSeqs('t', 'c', 1), first + 1];
  expect((await registry.applyDocument('t', 'c', 'b', del, null)).applied).toBe(true);
  expect((await registry.applyDocument('t', 'c', 'b', late, 2)).applied).toBe(false);
  expect(await registry.document('t', 'c', 'b')).toEqual({ chunks: 0, seq: del, deleted: true });
  expect(await registry.describe('t', 'c')).toMatchObject({ documents: 1, chunks: 1, version: 4 });
  expect((await registry.list('t')).map((c) => c.name)).toEqual(['c']);
});

it('keeps the first embedder of a collection', async () => {
  expect(await registry.claim('t', 'e', { name: 'hash', dimension: 16 })).toEqual({
    embedder: 'hash',
    dimension: 16,
  });
  expect(await registry.claim('t', 'e', { name: 'openai:x', dimension: 8 })).toEqual({
    embedder: 'hash',
    dimension: 16,
  });
});

it('runs the work of one collection one at a time under its lock', async () => {
  let inside = 0;
  let most = 0;
  const work = async () => {
    inside++;
    most = Math.max(most, inside);
    await new Promise((resolve) => setImmediate(resolve));
    await redis.ping();
    inside--;
  };
  await Promise.all(Array.from({ length: 8 }, () => registry.withLock('t', 'locked', work)));
  expect(most).toBe(1);
  // Another collection's lock is independent.
  const a = registry.withLock('t', 'x', () =>
    registry.withLock('t', 'y', () => Promise.resolve('nested')),
  );
  expect(await a).toBe('nested');
});

it('keeps a deleted document’s tombstone while an older ingestion could arrive, then prunes it', async () => {
  await registry.claim('t', 'tombs', { name: 'hash', dimension: 8 });
  const seq = await registry.reserveSeqs('t', 'tombs', 4);
  await registry.applyDocument('t', 'tombs', 'gone', seq, 3);
  await registry.applyDocument('t', 'tombs', 'gone', seq + 1, null);
  const tombstones = keys.collectionTombstones('t', 'tombs');
  expect(await redis.zrange(tombstones, '0', '-1')).toEqual(['gone']);
  // The tombstone refuses the older ingestion arriving late.
  expect((await registry.applyDocument('t', 'tombs', 'gone', seq, 3)).applied).toBe(false);
  // Deleted longer ago than TOMBSTONE_KEEP_MS: the next change of the collection prunes it.
  await redis.zadd(tombstones, String(Date.now() - TOMBSTONE_KEEP_MS - 1_000), 'gone');
  await registry.applyDocument('t', 'tombs', 'other', seq + 2, 1);
  expect(await redis.hexists(keys.collectionDocuments('t', 'tombs'), 'gone')).toBe(0);
  expect(await redis.zcard(tombstones)).toBe(0);
  // A document sent again after its deletion is live, and no longer a tombstone to prune.
  await registry.applyDocument('t', 'tombs', 'other', seq + 3, null);
  await registry.applyDocument(
    't',
    'tombs',
    'other',
    await registry.reserveSeqs('t', 'tombs', 1),
    2,
  );
  expect(await redis.zcard(tombstones)).toBe(0);
});
