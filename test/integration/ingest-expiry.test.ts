import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createKeys, createLeases, TOMBSTONE_KEEP_MS } from '@askq/shared';
import { createIngestProcessor } from '../../apps/worker/src/ingestion.js';
import type { IngestDeps } from '../../apps/worker/src/knowledge/ingest.js';

// An ingestion that waited longer than a tombstone is kept is refused whole: applied after its
// document's tombstone was pruned, an upsert queued before a deletion would bring it back.
let redis: Redis;
const keys = createKeys(`exp${randomUUID().slice(0, 8)}`);

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await redis?.quit();
});

it('fails an ingestion queued longer ago than TOMBSTONE_KEEP_MS with JOB_TIMEOUT, storing nothing', async () => {
  let stored = 0;
  const processor = createIngestProcessor({
    redis,
    keys,
    log: pino({ level: 'silent' }),
    ingest: {
      embedder: { name: 'hash', dimension: 8, embed: () => Promise.resolve([]) },
      store: {
        upsert: () => Promise.resolve(void stored++),
        deleteChunks: () => Promise.resolve(),
      },
    } as unknown as IngestDeps,
    resultTtlSeconds: 60,
    leases: createLeases(redis),
  });
  const job = {
    id: 'j1',
    data: {
      op: 'upsert',
      ingestionId: 'ing-old',
      tenant: 't',
      collection: 'c',
      embedder: 'hash',
      documents: [{ id: 'd', text: 'An old document.', seq: 1 }],
    },
    timestamp: Date.now() - TOMBSTONE_KEEP_MS - 60_000,
    attemptsStarted: 1,
    attemptsMade: 0,
    opts: { attempts: 3 },
  } as unknown as Job;
  await expect(processor(job)).rejects.toThrow(/days for a worker/);
  const record = await redis.hgetall(keys.ingestion('ing-old'));
  expect(record.status).toBe('failed');
  expect(JSON.parse(record.error!)).toMatchObject({ code: 'JOB_TIMEOUT' });
  expect(stored).toBe(0);
});
