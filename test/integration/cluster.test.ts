import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed, vi } from 'vitest';
import { createKeys, questionShards, shardOf } from '@askq/shared';
import { waitForIngestion } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { spawnApi, spawnWorker, type AppProcess } from '../support/processes.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { followEvents, type ReceivedEvent } from '../support/sse-client.js';

// askq on a real Redis Cluster (three masters, three replicas), as it runs when it outgrows one
// Redis: two API processes and two workers, the questions spread over three queue shards. Then a
// master dies, and its replica has to carry on with the questions it held.
const SHARDS = 3;
const DOCS = [
  {
    id: 'tides',
    title: 'Tides',
    text: 'Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.',
  },
  {
    id: 'volcanoes',
    title: 'Volcanoes',
    text: 'Volcanoes erupt when magma from the mantle rises through cracks in the crust.',
  },
];
const ANSWER =
  'Tides rise and fall because the Moon and the Sun pull on the oceans, as the first source explains [1].';

let cluster: TestRedisCluster;
let llm: FakeLlm;
let client: Cluster;
let prefix: string;
const apis: AppProcess[] = [];
const workers: AppProcess[] = [];

beforeAll(async () => {
  [cluster, llm] = await Promise.all([startRedisCluster(), createFakeLlm()]);
  llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
  prefix = await spreadPrefix(cluster);
  const env = {
    REDIS_URL: cluster.urls.join(','),
    REDIS_CLUSTER: 'true',
    REDIS_PREFIX: prefix,
    QUEUE_SHARDS: String(SHARDS),
    CHROMA_URL: inject('chromaUrl'),
    LLM_BASE_URL: llm.baseURL,
    TOKEN_BATCH_MS: '20',
    // A job whose lock lived on the dead master is taken back within seconds, yet a lock is not
    // lost just because two busy cores delay a renewal (three losses fail a question).
    WORKER_LOCK_MS: '5000',
    WORKER_STALLED_INTERVAL_MS: '1000',
    // Retries spread over seconds, as in production, so three attempts outlast a failover.
    RETRY_BASE_DELAY_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '5000',
  };
  apis.push(...(await Promise.all([spawnApi(env), spawnApi(env)])));
  workers.push(...(await Promise.all([spawnWorker(env), spawnWorker(env)])));
  client = new Cluster(
    cluster.urls
      .slice(0, 1)
      .map((url) => new URL(url))
      .map(hostPort),
  );
  const ingested = await post(apis[0]!, '/v1/documents', { documents: DOCS });
  const { ingestionId } = (await ingested.json()) as { ingestionId: string };
  expect((await waitForIngestion(apis[0]!.url, ingestionId)).status).toBe('completed');
}, 120_000);

afterAll(async () => {
  await client?.quit();
  await Promise.all([...apis, ...workers].map((app) => app.process.stop(5_000)));
  await Promise.all([cluster?.stop(), llm?.close()]);
});

const post = (api: AppProcess, path: string, body: unknown) =>
  fetch(api.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function ask(api: AppProcess, question: string): Promise<string> {
  const res = await post(api, '/v1/questions', { question, cache: false });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/**
 * Follows a question's stream on one API until its sources arrive, drops it, and resumes on the
 * other API from the last event seen: together they must be the whole log, in order, once.
 */
async function followAcross(id: string, first: AppProcess, second: AppProcess) {
  const path = `/v1/questions/${id}/events`;
  const head = await followEvents(first.url + path, {
    stopAfter: (events) => events.some((e) => e.event === 'sources'),
    timeoutMs: 60_000,
  });
  const tail = ['completed', 'failed', 'cancelled'].includes(head.at(-1)!.event)
    ? []
    : await followEvents(`${second.url}${path}?lastEventId=${head.at(-1)!.id}`, {
        timeoutMs: 60_000,
      });
  return [...head, ...tail];
}

function expectWholeLog(events: ReceivedEvent[]) {
  const ids = events.map((e) => e.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort(compareIds)).toEqual(ids);
  // The whole last event on failure: a `failed` one says why.
  expect(events.at(-1)).toMatchObject({ event: 'completed' });
}

describe('on a Redis Cluster', () => {
  it('answers through both APIs, resumes streams across them, and spreads the shards', async () => {
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) => ask(apis[i % 2]!, `Why do tides happen? (${i})`)),
    );
    const logs = await Promise.all(
      ids.map((id, i) => followAcross(id, apis[i % 2]!, apis[(i + 1) % 2]!)),
    );
    for (const log of logs) expectWholeLog(log);

    // Each question ran from the shard its id names; the shards live on different masters.
    const shards = questionShards(createKeys(prefix), SHARDS);
    // BullMQ moves a job to `completed` after its processor returns, which is after the client
    // saw the `completed` event: wait for that move, it is not a race askq could close.
    for (const id of ids) {
      const shard = shards[shardOf(id, SHARDS)]!;
      await vi.waitFor(
        async () =>
          expect(await client.zscore(`${shard.prefix}:questions:completed`, id)).not.toBeNull(),
        { timeout: 10_000, interval: 50 },
      );
    }
    const masters = await Promise.all(shards.map((s) => cluster.masterOf(s.prefix)));
    expect(new Set(masters.map((m) => m.port)).size).toBe(SHARDS);
    // Both workers took part.
    const served = await Promise.all(workers.map((w) => completedBy(w)));
    expect(served.every((n) => n > 0)).toBe(true);
  });

  it('cancels through one API a question that a worker is answering', async () => {
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 200 }));
    try {
      const id = await ask(apis[0]!, 'How long do tides take? (cancel)');
      const path = `/v1/questions/${id}/events`;
      const seen = await followEvents(apis[1]!.url + path, {
        stopAfter: (events) => events.some((e) => e.event === 'token'),
      });
      const res = await fetch(`${apis[1]!.url}/v1/questions/${id}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
      const rest = await followEvents(`${apis[0]!.url}${path}?lastEventId=${seen.at(-1)!.id}`);
      expect(rest.at(-1)!.event).toBe('cancelled');
      // Stopped mid-answer: the model's stream was cut, not run to its end.
      const tokens = [...seen, ...rest].filter((e) => e.event === 'token');
      const streamed = tokens.map((e) => (e.data as { text: string }).text).join('');
      expect(streamed.length).toBeLessThan(ANSWER.length);
    } finally {
      llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
    }
  });

  it("sends a question's events by sharded pub/sub, on its own shard only", async () => {
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 100 }));
    const nodes = cluster.nodes.map((node) => ({ node, redis: new Redis(node.url) }));
    try {
      const id = await ask(apis[0]!, 'When are tides highest? (sharded)');
      const channel = createKeys(prefix).eventsChannel(id);
      const streaming = followEvents(`${apis[1]!.url}/v1/questions/${id}/events`);
      const owner = await cluster.masterOf(channel);
      // [channel, subscribers] for a sharded or a classic subscription.
      const count = async (redis: Redis, kind: 'SHARDNUMSUB' | 'NUMSUB') =>
        Number(((await redis.call('PUBSUB', kind, channel)) as [string, number])[1]);
      // The streaming API subscribed on the master of the question's slot...
      await vi.waitFor(
        async () =>
          expect(await count(nodes.find((n) => n.node === owner)!.redis, 'SHARDNUMSUB')).toBe(1),
        { timeout: 10_000, interval: 20 },
      );
      // ...and nowhere else, and not by classic pub/sub, whose messages every node carries.
      for (const { node, redis } of nodes) {
        if (node !== owner) expect(await count(redis, 'SHARDNUMSUB')).toBe(0);
        expect(await count(redis, 'NUMSUB')).toBe(0);
      }
      const events = await streaming;
      expect(events.filter((e) => e.event === 'token').length).toBeGreaterThan(1);
      expectWholeLog(events);
    } finally {
      for (const { redis } of nodes) redis.disconnect();
      llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
    }
  });

  it('keeps answering when a master dies: in-flight questions complete, new ones too', async () => {
    onTestFailed(dumpLogs);
    // Slow answers, so these are mid-stream when the master goes.
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 150 }));
    const running = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ask(apis[i % 2]!, `How do tides work? (${i})`)),
    );
    const streams = running.map((id, i) =>
      followEvents(`${apis[i % 2]!.url}/v1/questions/${id}/events`, { timeoutMs: 45_000 }),
    );
    // Every one has started answering before the crash.
    await Promise.all(
      running.map((id, i) =>
        followEvents(`${apis[(i + 1) % 2]!.url}/v1/questions/${id}/events`, {
          stopAfter: (events) => events.some((e) => e.event === 'token'),
        }),
      ),
    );

    // The master of the first question's shard: it holds that job, its lock, and its neighbours'.
    const shards = questionShards(createKeys(prefix), SHARDS);
    const victim = await cluster.masterOf(shards[shardOf(running[0]!, SHARDS)]!.prefix);
    await cluster.kill(victim);
    await cluster.waitForFailover(victim);

    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
    const fresh = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ask(apis[i % 2]!, `What makes volcanoes erupt? (${i})`)),
    );
    // Complete, and each answer streamed cleanly: after the last `retry`, only the tokens of the
    // attempt that finished (a worker that lost its lock in the failover is fenced off).
    for (const events of await Promise.all(streams)) {
      expect(events.at(-1)).toMatchObject({ event: 'completed' });
      const final = events.slice(events.findLastIndex((e) => e.event === 'retry') + 1);
      const text = final
        .filter((e) => e.event === 'token')
        .map((e) => (e.data as { text: string }).text)
        .join('');
      expect(text).toBe((events.at(-1)!.data as { result: { answer: string } }).result.answer);
    }
    const logs = await Promise.all(
      fresh.map((id, i) => followAcross(id, apis[i % 2]!, apis[(i + 1) % 2]!)),
    );
    for (const log of logs) expectWholeLog(log);
  }, 120_000);
});

/** What each process logged, for a failure that happened under load and needs explaining. */
async function dumpLogs() {
  for (const app of [...apis, ...workers]) {
    const lines = (await readFile(app.logFile, 'utf8')).trim().split('\n');
    console.error(`--- ${app.logFile} (last 60 lines)\n${lines.slice(-60).join('\n')}`);
  }
}

/** A prefix whose shard queues hash to slots on different masters, as a deployment would pick. */
async function spreadPrefix(redis: TestRedisCluster): Promise<string> {
  for (;;) {
    const candidate = `c${randomUUID().slice(0, 8)}`;
    const shards = questionShards(createKeys(candidate), SHARDS);
    const masters = await Promise.all(shards.map((s) => redis.masterOf(s.prefix)));
    if (new Set(masters.map((m) => m.port)).size === SHARDS) return candidate;
  }
}

/** Questions a worker finished, from its metrics. */
async function completedBy(worker: AppProcess): Promise<number> {
  const text = await (await fetch(`${worker.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('askq_questions_total{') && l.includes('outcome="completed"'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

function hostPort(url: URL) {
  return { host: url.hostname, port: Number(url.port) };
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}
