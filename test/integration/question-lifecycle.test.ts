import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createKeys, type QuestionView } from '@askq/shared';
import { createIdempotency } from '../../apps/api/src/idempotency.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { spawnApi, spawnWorker } from '../support/processes.js';
import { startRedisProxy, type RedisProxy, type RedisCommand } from '../support/redis-proxy.js';
import { followEvents, type ReceivedEvent } from '../support/sse-client.js';

// The windows in which an accepted question could once wait forever, each opened for real: a
// process killed at a chosen point, a Redis connection cut or stalled after a chosen command
// (through a TCP proxy), a job lost as a failover would lose it. Each question ends within its
// deadline plus one sweep, with a code that says why.
const DOCS = [{ id: 'tides', text: 'Tides are caused by the pull of the Moon on the oceans.' }];
const ANSWER = 'Tides are caused by the pull of the Moon [1].';
const SLOW = `${'Tides are caused by the Moon '.repeat(20).trim()} [1].`;
// The sweep takes a question without a job for lost only this long after its record was written
// (LOST_JOB_GRACE_MS, 60 s by default): short here, so the tests that lose a job end in seconds.
const LOST_JOB_GRACE_MS = '2000';

let llm: FakeLlm;
let redis: Redis;
beforeAll(async () => {
  llm = await createFakeLlm();
  llm.reply(() => ({ text: ANSWER }));
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await llm?.close();
  redis?.disconnect();
});

const proxyFor = () => {
  const url = new URL(inject('redisUrl'));
  return startRedisProxy({ host: url.hostname, port: Number(url.port) });
};
/** BullMQ's script that adds a job: the only one that names the queue's id counter. */
const addsAQuestionJob = (command: RedisCommand) =>
  (command[0] === 'evalsha' || command[0] === 'eval') &&
  command.some((arg) => arg.endsWith(':questions:id'));
const lastEvent = (events: ReceivedEvent[]) => events.at(-1)!;
const errorOf = (event: ReceivedEvent) => (event.data as { error: { code: string } }).error;
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/questions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('an API that dies between the record and the job', () => {
  it('leaves no one waiting: a question joined meanwhile ends LOST within a sweep', async () => {
    const proxy = await proxyFor();
    // One API process reaches Redis through the proxy, and is killed once it has written the
    // record and is about to add the job; the other serves the joiner and the stream.
    const prefix = `lost${Date.now()}`;
    const env = {
      REDIS_PREFIX: prefix,
      CHROMA_URL: inject('chromaUrl'),
      LLM_BASE_URL: llm.baseURL,
    };
    const doomed = await spawnApi({ ...env, REDIS_URL: proxy.url });
    const askq = await startAskq({
      prefix,
      env: { LLM_BASE_URL: llm.baseURL, ORPHAN_SWEEP_INTERVAL_MS: '500', LOST_JOB_GRACE_MS },
    });
    try {
      const question = { question: 'What causes the tides? (the API dies)' };
      const adding = proxy.on(addsAQuestionJob, 'stall');
      const owner = post(doomed.url, question).catch(() => undefined);
      await adding;
      // The record and its in-flight registration exist: a newcomer joins the question.
      const joined = await post(askq.url, question);
      expect(joined.status).toBe(202);
      const { id, coalesced } = (await joined.json()) as { id: string; coalesced?: boolean };
      expect(coalesced).toBe(true);
      process.kill(doomed.process.pid, 'SIGKILL');
      await doomed.process.exited;
      await owner;
      // (The proxy stays stalled: what the dead process had sent must never reach Redis.)
      // No job will ever run it: the sweep finds it open without one.
      const events = await followEvents(`${askq.url}/v1/questions/${id}/events`, {
        timeoutMs: 30_000,
      });
      expect(lastEvent(events).event).toBe('failed');
      expect(errorOf(lastEvent(events))).toMatchObject({ code: 'LOST' });
    } finally {
      await askq.stop();
      await proxy.close();
    }
  }, 60_000);
});

describe('cancelling', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '5', ORPHAN_SWEEP_INTERVAL_MS: '500' },
    });
    await askq.seed(DOCS);
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('lets a client that joined a question go without cancelling it for the others', async () => {
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 20 }));
    const first = await askq.ask('What causes the tides? (two askers)');
    const second = await askq.ask('What causes the tides? (two askers)');
    expect(second.id).toBe(first.id);
    const del = await fetch(`${askq.url}/v1/questions/${first.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ id: first.id, detached: true });
    // It goes on for the other asker, to its answer.
    const events = await followEvents(first.events, { timeoutMs: 30_000 });
    expect(lastEvent(events).event).toBe('completed');
  });

  it('cancels when the last holder lets go', async () => {
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 40 }));
    const first = await askq.ask('What pulls the oceans? (two askers, both leave)');
    await askq.ask('What pulls the oceans? (two askers, both leave)');
    await followEvents(first.events, { stopAfter: (got) => got.some((e) => e.event === 'token') });
    const answers = [];
    for (let i = 0; i < 2; i++) {
      answers.push(
        (await fetch(`${askq.url}/v1/questions/${first.id}`, { method: 'DELETE' })).status,
      );
    }
    expect(answers).toEqual([200, 202]);
    const events = await followEvents(first.events, { timeoutMs: 30_000 });
    expect(lastEvent(events).event).toBe('cancelled');
  });
});

describe('a cancel recorded between the last token and `completed`', () => {
  it('ends the question cancelled at once, not at its deadline', async () => {
    const proxy = await proxyFor();
    const prefix = `late${Date.now()}`;
    // The worker reaches Redis through the proxy, which holds its `completed` append while the
    // cancel is recorded; the log then refuses that append.
    const api = await startAskq({ prefix, worker: false });
    const worker = await spawnWorker({
      REDIS_URL: proxy.url,
      REDIS_PREFIX: prefix,
      CHROMA_URL: inject('chromaUrl'),
      LLM_BASE_URL: llm.baseURL,
      TOKEN_BATCH_MS: '5',
    });
    try {
      await api.seed(DOCS);
      llm.reply(() => ({ text: ANSWER }));
      // The event log's append names the question's log; BullMQ's scripts say `completed` too.
      const completing = proxy.on(
        (c) =>
          (c[0] === 'evalsha' || c[0] === 'eval') &&
          c.includes('completed') &&
          c.some((arg) => arg.endsWith('}:events')),
        'stall',
      );
      const asked = await api.ask('What causes the tides? (cancelled at the end)', {
        cache: false,
      });
      await completing;
      const res = await fetch(`${api.url}/v1/questions/${asked.id}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
      proxy.heal();
      // Well before its deadline (JOB_TIMEOUT_MS, two minutes): the worker ended it itself.
      const events = await followEvents(asked.events, { timeoutMs: 20_000 });
      expect(lastEvent(events).event).toBe('cancelled');
      expect(events.some((e) => e.event === 'completed')).toBe(false);
    } finally {
      proxy.heal();
      await worker.process.stop();
      await api.stop();
      await proxy.close();
    }
  }, 60_000);
});

describe('a cancel whose `cancelled` event could not be written', () => {
  it('answers 202 only once the cancel is recorded, and the question still ends cancelled', async () => {
    const proxy = await proxyFor();
    const prefix = `cxl${Date.now()}`;
    // The API that takes the cancel reaches Redis through the proxy and dies after answering, so
    // nothing it still holds can land later; no worker runs yet, so the question waits queued.
    const doomed = await spawnApi({
      REDIS_URL: proxy.url,
      REDIS_PREFIX: prefix,
      CHROMA_URL: inject('chromaUrl'),
    });
    const api = await startAskq({ prefix, worker: false });
    try {
      const asked = await post(doomed.url, {
        question: 'What causes the tides? (cancel half done)',
        cache: false,
      });
      const { id } = (await asked.json()) as { id: string };
      // The cancel is recorded and the job removed; then the connection drops on the append.
      const appending = proxy.on(
        (c) => (c[0] === 'evalsha' || c[0] === 'eval') && c.includes('cancelled'),
        'cut',
      );
      const res = await fetch(`${doomed.url}/v1/questions/${id}`, { method: 'DELETE' });
      await appending;
      expect(res.status).toBe(202);
      process.kill(doomed.process.pid, 'SIGKILL');
      await doomed.process.exited;
      expect(await redis.hget(createKeys(prefix).question(id), 'cancelRequested')).toBe('1');
      expect(await redis.hget(createKeys(prefix).question(id), 'status')).toBe('queued');
      // No job, nobody to end it but the sweep, which honours the recorded cancel.
      const sweeper = await spawnWorker({
        REDIS_URL: inject('redisUrl'),
        CHROMA_URL: inject('chromaUrl'),
        REDIS_PREFIX: prefix,
        ORPHAN_SWEEP_INTERVAL_MS: '500',
        LOST_JOB_GRACE_MS,
      });
      try {
        const received = await followEvents(`${api.url}/v1/questions/${id}/events`, {
          timeoutMs: 30_000,
        });
        expect(lastEvent(received).event).toBe('cancelled');
      } finally {
        await sweeper.process.stop();
      }
    } finally {
      await api.stop();
      await proxy.close();
    }
  }, 60_000);
});

describe('the sweep', () => {
  it('ends a question whose job BullMQ already trimmed while a failover lost its end', async () => {
    const askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, ORPHAN_SWEEP_INTERVAL_MS: '300', LOST_JOB_GRACE_MS },
    });
    try {
      await askq.seed(DOCS);
      await trimmedAndLost(askq);
    } finally {
      await askq.stop();
    }
  }, 60_000);

  it('ends a question whose waiting job a failover lost, keeping its record', async () => {
    const askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, ORPHAN_SWEEP_INTERVAL_MS: '300', LOST_JOB_GRACE_MS },
    });
    const { Queue } = await import('bullmq');
    const connection = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const keys = createKeys(askq.prefix);
    const queue = new Queue('questions', { connection, prefix: keys.queuePrefix });
    try {
      await askq.seed(DOCS);
      // Held in the queue, then lost from it: the record (another slot) survived, the job not.
      await queue.pause();
      const asked = await askq.ask('What causes tides? (job lost)', { cache: false });
      await redis.del(`${keys.queuePrefix}:questions:${asked.id}`);
      await redis.lrem(`${keys.queuePrefix}:questions:wait`, 0, asked.id);
      await queue.resume();
      const events = await followEvents(asked.events, { timeoutMs: 30_000 });
      expect(lastEvent(events).event).toBe('failed');
      expect(errorOf(lastEvent(events))).toMatchObject({ code: 'LOST' });
    } finally {
      await queue.close();
      connection.disconnect();
      await askq.stop();
    }
  }, 60_000);

  it('leaves a question waiting for its retry alone across sweeps, however old', async () => {
    // No grace at all: a job the sweep failed to see (a delayed one, say) would be ended LOST.
    const askq = await startAskq({
      env: {
        LLM_BASE_URL: llm.baseURL,
        ORPHAN_SWEEP_INTERVAL_MS: '300',
        LOST_JOB_GRACE_MS: '0',
        RETRY_BASE_DELAY_MS: '3000',
      },
    });
    try {
      await askq.seed(DOCS);
      let calls = 0;
      llm.reply(() => (++calls === 1 ? { status: 500, error: 'overloaded' } : { text: ANSWER }));
      const asked = await askq.ask('What causes tides? (retried later)', { cache: false });
      const events = await followEvents(asked.events, { timeoutMs: 30_000 });
      expect(events.map((e) => e.event)).toContain('retry');
      expect(lastEvent(events).event).toBe('completed');
      expect(calls).toBe(2);
    } finally {
      await askq.stop();
    }
  }, 60_000);

  async function trimmedAndLost(askq: TestAskq) {
    llm.reply(() => ({ text: ANSWER }));
    const keys = createKeys(askq.prefix);
    const asked = await askq.ask('What causes tides? (trimmed)', { cache: false });
    const events = await followEvents(asked.events);
    expect(lastEvent(events).event).toBe('completed');
    // The failover lost the last event; the job is gone too (removeOnComplete trimmed it). The
    // question is in the deadline index, under its own deadline: the sweep drops it only once
    // it saw it end.
    await redis.xdel(keys.events(asked.id), lastEvent(events).id);
    await redis.hset(keys.question(asked.id), 'status', 'active');
    await redis.hdel(keys.question(asked.id), 'result', 'finishedAt');
    const deadline = Number(await redis.hget(keys.question(asked.id), 'deadline'));
    await redis.zadd(keys.questionDeadlines, deadline, asked.id);
    await redis.del(`${keys.queuePrefix}:questions:${asked.id}`);
    const rest = await followEvents(`${asked.events}?lastEventId=${events.at(-2)!.id}`, {
      timeoutMs: 30_000,
    });
    expect(rest.map((e) => e.event)).toEqual(['failed']);
    expect(errorOf(rest[0]!)).toMatchObject({ code: 'LOST' });
  }
});

describe('a deadline', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, ORPHAN_SWEEP_INTERVAL_MS: '300', JOB_TIMEOUT_MS: '2000' },
    });
    await askq.seed(DOCS);
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('ends a question no worker took before it with JOB_TIMEOUT', async () => {
    // Paused: the job waits, as it would with every worker busy or gone.
    const { Queue } = await import('bullmq');
    const connection = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const queue = new Queue('questions', {
      connection,
      prefix: createKeys(askq.prefix).queuePrefix,
    });
    await queue.pause();
    try {
      const asked = await askq.ask('What causes tides? (never taken)', { cache: false });
      const events = await followEvents(asked.events, { timeoutMs: 30_000 });
      expect(lastEvent(events).event).toBe('failed');
      expect(errorOf(lastEvent(events))).toMatchObject({ code: 'JOB_TIMEOUT' });
      const view = (await (
        await fetch(`${askq.url}/v1/questions/${asked.id}`)
      ).json()) as QuestionView;
      expect(view.status).toBe('failed');
    } finally {
      await queue.resume();
      await queue.close();
      connection.disconnect();
    }
  }, 60_000);
});

describe('Idempotency-Key', () => {
  it('lets a request whose claim lapsed free only its own claim, not a newer one', async () => {
    const keys = createKeys(`idem${randomUUID().slice(0, 8)}`);
    const idempotency = createIdempotency(redis, keys, pino({ level: 'silent' }), {
      ttlSeconds: 60,
      pendingSeconds: 30,
    });
    const body = { question: 'What causes the tides? (slow accept)' };
    const first = await idempotency.begin('acme', 'slow-0001', body);
    // Its claim lapses (the accept outlived IDEMPOTENCY_PENDING_SECONDS); a retry claims anew.
    const [stored] = await redis.keys(`${keys.idempotency('acme', '*')}`);
    await redis.del(stored!);
    const second = await idempotency.begin('acme', 'slow-0001', body);
    expect([first.kind, second.kind]).toEqual(['new', 'new']);
    if (first.kind !== 'new' || second.kind !== 'new') return;
    await first.abandon();
    // The retry still holds the key: a third attempt waits for it rather than running too.
    await expect(idempotency.begin('acme', 'slow-0001', body)).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await second.complete({ status: 202, body: { id: 'q2' } });
    expect(await idempotency.begin('acme', 'slow-0001', body)).toEqual({
      kind: 'replay',
      response: { status: 202, body: { id: 'q2' } },
    });
  });

  it('frees the key of a request whose process died while accepting it, within seconds', async () => {
    const proxy = await proxyFor();
    const prefix = `idem${Date.now()}`;
    const env = { REDIS_PREFIX: prefix, CHROMA_URL: inject('chromaUrl') };
    const doomed = await spawnApi({
      ...env,
      REDIS_URL: proxy.url,
      IDEMPOTENCY_PENDING_SECONDS: '2',
    });
    const api = await startAskq({
      prefix,
      worker: false,
      env: { IDEMPOTENCY_PENDING_SECONDS: '2' },
    });
    try {
      const headers = { 'idempotency-key': 'retry-me-0001' };
      const body = { question: 'What causes the tides? (crash mid-accept)', cache: false };
      // The key is claimed; then the process stalls and is killed before it completes.
      const claimed = proxy.on(
        (c) => c[0] === 'set' && c.some((a) => a.includes(':idem:')),
        'stall',
        {
          before: false,
        },
      );
      const first = post(doomed.url, body, headers).catch(() => undefined);
      await claimed;
      // While the first is being accepted, a retry is refused: it could enqueue it twice.
      expect((await post(api.url, body, headers)).status).toBe(409);
      process.kill(doomed.process.pid, 'SIGKILL');
      await doomed.process.exited;
      await first;
      // (The proxy stays stalled: what the dead process had sent must never reach Redis.)
      // Seconds later the claim has lapsed, and the retry is accepted.
      await vi.waitFor(async () => expect((await post(api.url, body, headers)).status).toBe(202), {
        timeout: 10_000,
        interval: 250,
      });
    } finally {
      await api.stop();
      await proxy.close();
    }
  }, 60_000);
});

describe('a Redis that hangs', () => {
  let proxy: RedisProxy;
  let api: TestAskq;
  beforeAll(async () => {
    proxy = await proxyFor();
    api = await startAskq({ worker: false, env: { REDIS_URL: proxy.url } });
  });
  afterAll(async () => {
    await api?.stop();
    await proxy?.close();
  });

  it('answers 503 in about a second instead of holding requests, and recovers', async () => {
    const { id } = await api.ask('What causes the tides? (before the hang)', { cache: false });
    proxy.stall();
    const started = performance.now();
    const [asked, read, events] = await Promise.all([
      post(api.url, { question: 'Anyone there?', cache: false }),
      fetch(`${api.url}/v1/questions/${id}`),
      fetch(`${api.url}/v1/questions/${id}/events`),
    ]);
    // Generous: REDIS_COMMAND_TIMEOUT_MS is 1 s; a hang used to hold them until Redis returned.
    expect(performance.now() - started).toBeLessThan(5_000);
    for (const res of [asked, read, events]) {
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: 'UNAVAILABLE' } });
    }
    proxy.heal();
    await vi.waitFor(
      async () => expect((await fetch(`${api.url}/v1/questions/${id}`)).status).toBe(200),
      {
        timeout: 10_000,
        interval: 200,
      },
    );
  }, 30_000);
});
