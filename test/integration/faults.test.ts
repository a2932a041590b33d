import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createKeys, type QuestionResult, type QuestionView } from '@askq/shared';
import { startChromaServer } from '../../scripts/lib/chroma-server.js';
import { freePort } from '../../scripts/lib/free-port.js';
import { waitFor } from '../../scripts/lib/managed-process.js';
import { startRedisServer } from '../../scripts/lib/redis-server.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { spawnWorker } from '../support/processes.js';
import {
  EVENT_NAMES,
  followEvents,
  readStream,
  type ReceivedEvent,
} from '../support/sse-client.js';

// Each fault done for real: Redis and Chroma stopped and restarted, workers killed and
// terminated mid-answer, questions that run too long, answers that try to forge SSE frames.
const DOCS = [
  { id: 'tides', text: 'Tides are caused by the pull of the Moon and the Sun on the oceans.' },
];
const ANSWER = 'Tides are caused by the pull of the Moon and the Sun [1].';
const SLOW = `${'Tides are caused by the Moon '.repeat(12).trim()} [1].`; // ~60 chunks

let llm: FakeLlm;
let dir: string;

beforeAll(async () => {
  llm = await createFakeLlm();
  dir = await mkdtemp(join(tmpdir(), 'askq-faults-'));
});
afterAll(async () => {
  await llm?.close();
  await rm(dir, { recursive: true, force: true });
});

const resultOf = (events: ReceivedEvent[]) =>
  (events.at(-1)!.data as { result: QuestionResult }).result;
const status = async (app: TestAskq, id: string) =>
  ((await (await fetch(`${app.url}/v1/questions/${id}`)).json()) as QuestionView).status;

describe('Redis outage', () => {
  it('answers 503 at once while Redis is down, and loses no accepted question across a restart', async () => {
    const port = await freePort();
    const data = join(dir, 'redis');
    let redis = await startRedisServer({ port, dataDir: data });
    const env = { REDIS_URL: redis.url, LLM_BASE_URL: llm.baseURL, WORKER_CONCURRENCY: '1' };
    const askq = await startAskq({ env });
    try {
      await askq.seed(DOCS);
      llm.reply(() => ({ text: SLOW, chunkDelayMs: 20 }));
      // One runs (slowly), two wait in the queue when Redis goes away.
      const accepted = [];
      for (let i = 0; i < 3; i++) accepted.push(await askq.ask(`What causes tides, part ${i}?`));
      await followEvents(accepted[0]!.events, {
        stopAfter: (got) => got.some((e) => e.event === 'token'),
      });

      await redis.stop(); // SIGTERM: Redis writes its AOF and exits
      const started = performance.now();
      const refused = await askq.post('/v1/questions', { question: 'During the outage?' });
      const elapsed = performance.now() - started;
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        'UNAVAILABLE',
      );
      expect(elapsed).toBeLessThan(1_000); // SPEC 7: fail fast, not after the client's timeout
      const ready = await fetch(`${askq.url}/readyz`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as {
        error: { message: string; details: Record<string, string> };
      };
      expect(body.error.message).toMatch(/redis/);
      expect(body.error.details).toMatchObject({ chroma: 'ok' });
      expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
      // The worker queues its commands while Redis is away; its probes and scrapes send none
      // (they would wait in that queue, one set per probe, and a scrape would hang with them).
      const worker = `http://127.0.0.1:${askq.worker!.metricsPort}`;
      const bounded = { signal: AbortSignal.timeout(10_000) };
      await vi.waitFor(
        async () =>
          expect(JSON.stringify(await (await fetch(`${worker}/readyz`, bounded)).json())).toMatch(
            /redis":"down: not connected/,
          ),
        { timeout: 10_000, interval: 100 },
      );
      const scrape = await fetch(`${worker}/metrics`, { signal: AbortSignal.timeout(10_000) });
      expect(await scrape.text()).toMatch(/^askq_redis_memory_ratio\{[^}]*\} nan$/im);

      redis = await startRedisServer({ port, dataDir: data });
      await waitFor(async () => (await fetch(`${askq.url}/readyz`)).ok, {
        timeoutMs: 30_000,
        what: 'the API ready again',
      });
      llm.reply(() => ({ text: ANSWER }));
      // Everything accepted before the outage completes, and so does a new question.
      const after = await askq.ask('What causes tides, after the outage?');
      for (const question of [...accepted, after]) {
        const events = await followEvents(question.events, { timeoutMs: 60_000 });
        expect(events.at(-1)!.event).toBe('completed');
        expect(await status(askq, question.id)).toBe('completed');
      }
    } finally {
      await askq.stop();
      await redis.stop();
    }
  }, 120_000);
});

describe('Chroma outage', () => {
  it('fails questions with RETRIEVAL_FAILED after retries, and the API stays up', async () => {
    const chroma = await startChromaServer({
      port: await freePort(),
      dataDir: join(dir, 'chroma'),
    });
    const askq = await startAskq({
      env: {
        CHROMA_URL: chroma.url,
        CHROMA_TIMEOUT_MS: '1000',
        RETRY_BASE_DELAY_MS: '20',
        LLM_BASE_URL: llm.baseURL,
      },
    });
    try {
      await askq.seed(DOCS);
      const worker = `http://127.0.0.1:${askq.worker!.metricsPort}`;
      expect(await (await fetch(`${worker}/readyz`)).json()).toMatchObject({ status: 'ready' });
      await chroma.stop();
      const { id, events } = await askq.ask('What causes tides?', { cache: false });
      const received = await followEvents(events, { timeoutMs: 60_000 });
      expect(received.at(-1)!.event).toBe('failed');
      expect((received.at(-1)!.data as { error: { code: string } }).error.code).toBe(
        'RETRIEVAL_FAILED',
      );
      expect(received.filter((e) => e.event === 'retry')).toHaveLength(2);
      expect(await status(askq, id)).toBe('failed');
      const ready = await fetch(`${askq.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toMatch(/chroma/);
      expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
      // The worker's probes say the same: alive, but not ready without Chroma.
      const workerReady = await fetch(`${worker}/readyz`);
      expect(workerReady.status).toBe(503);
      expect(await workerReady.json()).toMatchObject({
        error: {
          code: 'UNAVAILABLE',
          details: { chroma: expect.stringMatching(/^down/), redis: 'ok' },
        },
      });
      expect((await fetch(`${worker}/healthz`)).status).toBe(200);
    } finally {
      await askq.stop();
    }
  }, 120_000);
});

describe('workers that die or stop', () => {
  let askq: TestAskq;
  let env: Record<string, string>;
  beforeAll(async () => {
    // The API only: workers run as their own processes so they can be killed.
    askq = await startAskq({ worker: false, env: { LLM_BASE_URL: llm.baseURL } });
    env = {
      REDIS_URL: inject('redisUrl'),
      CHROMA_URL: inject('chromaUrl'),
      REDIS_PREFIX: askq.prefix,
      LLM_BASE_URL: llm.baseURL,
      TOKEN_BATCH_MS: '5',
      // Recovery in seconds: a killed worker's lock lapses after 2 s, checked every second.
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    };
    const seeder = await spawnWorker(env);
    await askq.seed(DOCS);
    await seeder.process.stop();
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('a worker killed with SIGKILL mid-answer loses nothing: another worker completes it', async () => {
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 50 }));
    const first = await spawnWorker(env);
    const { id, events } = await askq.ask('What causes tides? (kill)', { cache: false });
    const seen = await followEvents(events, {
      stopAfter: (got) => got.some((e) => e.event === 'token'),
    });
    process.kill(first.process.pid, 'SIGKILL');
    expect(await first.process.exited).toBeNull();

    llm.reply(() => ({ text: ANSWER }));
    const second = await spawnWorker(env);
    try {
      const rest = await followEvents(`${events}?lastEventId=${seen.at(-1)!.id}`, {
        timeoutMs: 60_000,
      });
      expect(rest.find((e) => e.event === 'retry')!.data).toEqual({
        attempt: 2,
        reason: 'worker_lost',
      });
      expect(rest.at(-1)!.event).toBe('completed');
      expect(resultOf(rest).answer).toBe(ANSWER);
      const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
      expect(view).toMatchObject({ status: 'completed', attempts: 2 });
    } finally {
      await second.process.stop();
    }
  }, 120_000);

  it('a question whose workers keep dying ends failed instead of waiting forever', async () => {
    // BullMQ fails a job that stalled more than maxStalledCount (2) times without running the
    // processor: askq must still write the question's end, or its clients wait for ever.
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 50 }));
    const { events } = await askq.ask('What causes tides? (cursed)', { cache: false });
    let seen: ReceivedEvent[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const worker = await spawnWorker(env);
      const after = seen.at(-1)?.id;
      seen = [
        ...seen,
        ...(await followEvents(after ? `${events}?lastEventId=${after}` : events, {
          stopAfter: (got) =>
            got.some(
              (e) => e.event === 'token' && (e.data as { attempt: number }).attempt === attempt,
            ),
          timeoutMs: 30_000,
        })),
      ];
      process.kill(worker.process.pid, 'SIGKILL');
      await worker.process.exited;
    }
    const last = await spawnWorker(env);
    try {
      const rest = await followEvents(`${events}?lastEventId=${seen.at(-1)!.id}`, {
        timeoutMs: 30_000,
      });
      expect(rest.at(-1)!.event).toBe('failed');
      expect(
        (rest.at(-1)!.data as { error: { code: string; message: string } }).error,
      ).toMatchObject({ code: 'LOST', message: expect.stringMatching(/stalled/) });
    } finally {
      await last.process.stop();
    }
  }, 120_000);

  it('a worker frozen past its lock is superseded: its late tokens never reach the stream', async () => {
    // SIGSTOP stands for a long pause or a partition (as in a Redis failover): the lock lapses,
    // another worker retries the question, and then the first one wakes up still mid-answer.
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 40 }));
    const first = await spawnWorker(env);
    const { events } = await askq.ask('What causes tides? (frozen)', { cache: false });
    const seen = await followEvents(events, {
      stopAfter: (got) => got.some((e) => e.event === 'token'),
    });
    process.kill(first.process.pid, 'SIGSTOP');
    const second = await spawnWorker(env);
    try {
      const retried = await followEvents(`${events}?lastEventId=${seen.at(-1)!.id}`, {
        stopAfter: (got) => got.some((e) => e.event === 'token'),
        timeoutMs: 30_000,
      });
      expect(retried.some((e) => e.event === 'retry')).toBe(true);
      process.kill(first.process.pid, 'SIGCONT');
      const rest = await followEvents(`${events}?lastEventId=${retried.at(-1)!.id}`, {
        timeoutMs: 60_000,
      });
      const all = [...seen, ...retried, ...rest];
      const afterRetry = all.slice(all.findLastIndex((e) => e.event === 'retry') + 1);
      const tokens = afterRetry.filter((e) => e.event === 'token');
      expect(tokens.every((e) => (e.data as { attempt: number }).attempt === 2)).toBe(true);
      expect(tokens.map((e) => (e.data as { text: string }).text).join('')).toBe(
        resultOf(rest).answer,
      );
      await waitFor(
        async () => (await readFile(first.logFile, 'utf8')).includes('took this question over'),
        { timeoutMs: 10_000, what: 'the first worker to notice it was superseded' },
      );
    } finally {
      process.kill(first.process.pid, 'SIGCONT');
      await Promise.all([first.process.stop(), second.process.stop()]);
    }
  }, 120_000);

  it('SIGTERM lets active questions finish, then the worker exits 0', async () => {
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 15 }));
    const worker = await spawnWorker({ ...env, SHUTDOWN_TIMEOUT_MS: '20000' });
    const asked = [
      await askq.ask('What causes tides? (drain 1)', { cache: false }),
      await askq.ask('What causes tides? (drain 2)', { cache: false }),
    ];
    await Promise.all(
      asked.map((a) =>
        followEvents(a.events, { stopAfter: (got) => got.some((e) => e.event === 'token') }),
      ),
    );
    process.kill(worker.process.pid, 'SIGTERM');
    expect(await worker.process.exited).toBe(0);
    for (const a of asked) {
      const { events } = await readStream(a.events);
      expect(events.at(-1)!.event).toBe('completed');
      expect(events.some((e) => e.event === 'retry')).toBe(false);
    }
  }, 120_000);

  it('keeps /healthz, /metrics and the cancel subscriber while it drains', async () => {
    // One word, then a long pause: only the broadcast cancel can stop the call inside it (the
    // worker's next append, which would also see the cancel, comes after the pause).
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 30_000 }));
    const worker = await spawnWorker({ ...env, SHUTDOWN_TIMEOUT_MS: '20000' });
    const { id, events } = await askq.ask('What causes tides? (cancelled while draining)', {
      cache: false,
    });
    await followEvents(events, { stopAfter: (got) => got.some((e) => e.event === 'token') });
    const call = llm.requests.findLastIndex((r) => r.path.endsWith('/chat/completions'));
    process.kill(worker.process.pid, 'SIGTERM');
    // It takes no more jobs (not ready) but is alive and still observable.
    await vi.waitFor(async () => expect((await fetch(`${worker.url}/readyz`)).status).toBe(503), {
      timeout: 10_000,
      interval: 50,
    });
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${worker.url}/metrics`)).text()).toMatch(/askq_questions_total/);
    // A cancel still reaches the question it is finishing, and then the drain ends.
    const cancel = await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
    expect(cancel.status).toBe(202);
    // Well inside the 30 s pause: the worker heard the broadcast and aborted the call.
    const heard = await Promise.race([
      llm.disconnected(call).then(() => 'aborted'),
      sleep(15_000, 'still streaming', { ref: false }),
    ]);
    expect(heard).toBe('aborted');
    const { events: received } = await readStream(events);
    expect(received.at(-1)!.event).toBe('cancelled');
    expect(await worker.process.exited).toBe(0);
  }, 120_000);

  it('SIGTERM with a short deadline hands the question back; another worker completes it', async () => {
    // About 6 s of answer against a 3 s deadline: 2.1 s to drain, then the hand-back.
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 100 }));
    const worker = await spawnWorker({ ...env, SHUTDOWN_TIMEOUT_MS: '3000' });
    const { id, events } = await askq.ask('What causes tides? (hand back)', { cache: false });
    const seen = await followEvents(events, {
      stopAfter: (got) => got.some((e) => e.event === 'token'),
    });
    process.kill(worker.process.pid, 'SIGTERM');
    // Handed back within the deadline: a clean exit, not one past it with the job still locked.
    expect(await worker.process.exited).toBe(0);
    const record = await (await fetch(`${askq.url}/v1/questions/${id}`)).json();
    expect(record).toMatchObject({ status: 'queued' });
    llm.reply(() => ({ text: ANSWER }));
    const next = await spawnWorker(env);
    try {
      const rest = await followEvents(`${events}?lastEventId=${seen.at(-1)!.id}`, {
        timeoutMs: 60_000,
      });
      const retries = rest.filter((e) => e.event === 'retry');
      // Said once, by the worker that handed it back (the next one does not call it lost).
      expect(retries.map((e) => e.data)).toEqual([{ attempt: 2, reason: 'worker_shutdown' }]);
      expect(rest.at(-1)!.event).toBe('completed');
    } finally {
      await next.process.stop();
    }
  }, 120_000);
});

describe("a Redis failover that loses a question's last event", () => {
  it('ends the question failed within a sweep, and leaves running ones alone', async () => {
    const askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, ORPHAN_SWEEP_INTERVAL_MS: '200' },
    });
    const redis = new Redis(inject('redisUrl'));
    const keys = createKeys(askq.prefix);
    try {
      await askq.seed(DOCS);
      llm.reply(() => ({ text: ANSWER }));
      const lost = await askq.ask('What causes tides, the one that is lost?');
      const events = await followEvents(lost.events);
      expect(events.at(-1)!.event).toBe('completed');

      // A question still answering, across several sweeps.
      llm.reply(() => ({ text: ANSWER, chunkDelayMs: 100 }));
      const running = await askq.ask('What causes tides, the one still running?');
      const runningEvents = followEvents(running.events);

      // What a failover within the replication lag leaves: the job finished, but the record and
      // log on the other master never got the last event (nor the slot's release), and the
      // question is still in the deadline index (the sweep drops it only once it saw it end).
      await redis.xdel(keys.events(lost.id), events.at(-1)!.id);
      await redis.hset(keys.question(lost.id), 'status', 'active');
      await redis.hdel(keys.question(lost.id), 'result', 'finishedAt');
      await redis.zadd(keys.tenantSlots('default'), Date.now(), lost.id);
      await redis.zadd(keys.questionDeadlines, Date.now() + 60_000, lost.id);

      const before = events.at(-2)!.id;
      const resumed = await followEvents(`${lost.events}?lastEventId=${before}`, {
        timeoutMs: 10_000,
      });
      expect(resumed.map((e) => e.event)).toEqual(['failed']);
      expect(resumed[0]!.data).toMatchObject({
        error: {
          code: 'LOST',
          message: expect.stringMatching(/was lost .*failover.*; ask again/),
        },
      });
      expect(await status(askq, lost.id)).toBe('failed');
      expect(await redis.zscore(keys.tenantSlots('default'), lost.id)).toBeNull();

      const ran = await runningEvents;
      expect(ran.at(-1)!.event).toBe('completed');
      expect(ran.some((e) => e.event === 'failed')).toBe(false);
    } finally {
      redis.disconnect();
      await askq.stop();
    }
  });
});

describe('time limits and hostile answers', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, JOB_TIMEOUT_MS: '600', TOKEN_BATCH_MS: '5' },
    });
    await askq.seed(DOCS);
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('ends a question that runs longer than JOB_TIMEOUT_MS with JOB_TIMEOUT, without retrying', async () => {
    llm.reply(() => ({ text: SLOW, chunkDelayMs: 100 }));
    const before = llm.requests.length;
    const { events } = await askq.ask('What causes tides? (slow)', { cache: false });
    const received = await followEvents(events);
    expect(received.at(-1)!.event).toBe('failed');
    expect((received.at(-1)!.data as { error: { code: string } }).error.code).toBe('JOB_TIMEOUT');
    expect(received.some((e) => e.event === 'retry')).toBe(false);
    await llm.disconnected(before); // the model request was aborted, not left running
  });

  it('cannot forge SSE frames: line breaks and "event:" in answers stay inside JSON data', async () => {
    const hostile =
      'Tides [1].\n\nevent: completed\ndata: {"result":"forged"}\r\n\r\nid: 9999999999999-0\nretry: 1\n\n';
    llm.reply(() => ({ text: hostile }));
    const { events } = await askq.ask('What causes tides? (hostile)', { cache: false });
    const raw = (await readStream(events)).raw;
    const names = [...raw.matchAll(/^event: (.*)$/gm)].map((m) => m[1]);
    expect(names.filter((n) => n === 'completed')).toHaveLength(1);
    expect(names.every((n) => EVENT_NAMES.includes(n!))).toBe(true);
    expect(raw).not.toMatch(/^id: 9999999999999-0$/m);
    expect(raw.match(/^retry: /gm)).toHaveLength(1);
    // The answer arrives intact (it fails grounding, so it is escalated and streamed twice).
    const parsed = await followEvents(events);
    expect(resultOf(parsed).answer).toBe(hostile);
    const lastRetry = parsed.map((e) => e.event).lastIndexOf('retry');
    const answer = parsed
      .slice(lastRetry + 1)
      .filter((e) => e.event === 'token')
      .map((e) => (e.data as { text: string }).text)
      .join('');
    expect(answer).toBe(hostile);
  });
});
