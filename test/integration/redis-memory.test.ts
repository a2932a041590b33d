import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/free-port.js';
import { startRedisServer, type RedisServer } from '../../scripts/lib/redis-server.js';
import { startAskq, type TestAskq } from '../support/askq.js';

// The managed Redis runs with a maxmemory, and askq says so before it is full: /readyz warns on
// both processes and askq_redis_memory_ratio shows it. A Redis of its own, 8 MB, filled to 95%.
let dir: string;
let server: RedisServer;
let redis: Redis;
let askq: TestAskq;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'askq-redis-memory-'));
  server = await startRedisServer({ port: await freePort(), dataDir: dir, maxmemory: '8mb' });
  redis = new Redis(server.url);
  askq = await startAskq({ env: { REDIS_URL: server.url, REDIS_MEMORY_WARN_RATIO: '0.9' } });
});
afterAll(async () => {
  redis?.disconnect();
  await askq?.stop();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const workerUrl = () => `http://127.0.0.1:${askq.worker!.metricsPort}`;
const ratioOn = async (base: string) =>
  Number(
    /^askq_redis_memory_ratio\{[^}]*\} (\S+)/m.exec(
      await (await fetch(`${base}/metrics`)).text(),
    )?.[1],
  );

it('starts the managed Redis with the maxmemory asked for, under noeviction', async () => {
  expect(await redis.config('GET', 'maxmemory')).toEqual(['maxmemory', String(8 * 1024 * 1024)]);
  expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
});

it('is ready without warnings while Redis has room, then warns near maxmemory', async () => {
  const before = (await (await fetch(`${askq.url}/readyz`)).json()) as { warnings?: string[] };
  expect(before.warnings).toBeUndefined();
  expect(await ratioOn(askq.url)).toBeLessThan(0.9);

  // Fill Redis to about 95% of its 8 MB, 64 KiB at a time, until it says so.
  const chunk = 'x'.repeat(64 * 1024);
  for (let i = 0; ; i++) {
    const info = await redis.info('memory');
    const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
    if (used > 0.95 * 8 * 1024 * 1024) break;
    await redis.set(`filler:${i}`, chunk);
  }

  for (const base of [askq.url, workerUrl()]) {
    const res = await fetch(`${base}/readyz`);
    expect(res.status, base).toBe(200);
    const body = (await res.json()) as { status: string; warnings?: string[] };
    expect(body.status).toBe('ready');
    expect(body.warnings?.[0]).toMatch(/^redis: memory at 9\d% of maxmemory/);
    expect(await ratioOn(base)).toBeGreaterThanOrEqual(0.9);
  }
});
