import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEventLog, createKeys, type QuestionView } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents, readStream, type ReceivedEvent } from '../support/sse-client.js';

const DOCS = [
  {
    id: 'tides',
    title: 'Tides',
    text: '# Tides\n\nTides are caused by the gravitational pull of the Moon and the Sun on the oceans. Spring tides happen at new and full moon, when the pulls line up.',
  },
  {
    id: 'volcanoes',
    title: 'Volcanoes',
    text: '# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basalt lava is runny; rhyolite lava is thick and traps gas.',
  },
];

let llm: FakeLlm;
let askq: TestAskq;

beforeAll(async () => {
  llm = await createFakeLlm();
  askq = await startAskq({ env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '5' } });
  await askq.seed(DOCS);
});

afterAll(async () => {
  await askq?.stop();
  await llm?.close();
});

const names = (events: ReceivedEvent[]) =>
  events.map((e) => {
    const data = e.data as { stage?: string; state?: string; status?: string };
    if (e.event === 'stage') return `stage:${data.stage}:${data.state}`;
    if (e.event === 'status') return `status:${data.status}`;
    return e.event;
  });

describe('asking a question', () => {
  it('streams stages in order, tokens that join to the stored answer, and the result', async () => {
    const answer = 'Tides come from the pull of the Moon and the Sun on the oceans [1].';
    llm.reply(() => ({ text: answer, chunkDelayMs: 2 }));
    const { id, events: eventsUrl } = await askq.ask('What causes tides?');
    const events = await followEvents(eventsUrl);

    const withoutTokens = names(events).filter((n) => n !== 'token');
    expect(withoutTokens).toEqual([
      'status:queued',
      'status:active',
      'stage:retrieval:started',
      'stage:retrieval:completed',
      'sources',
      'stage:generation:started',
      'stage:generation:completed',
      'stage:validation:started',
      'stage:validation:completed',
      'completed',
    ]);
    // Every token lies between generation start and end.
    const n = names(events);
    const tokenIdx = n.flatMap((name, i) => (name === 'token' ? [i] : []));
    expect(tokenIdx.length).toBeGreaterThan(0);
    expect(Math.min(...tokenIdx)).toBeGreaterThan(n.indexOf('stage:generation:started'));
    expect(Math.max(...tokenIdx)).toBeLessThan(n.indexOf('stage:generation:completed'));

    const streamed = events
      .filter((e) => e.event === 'token')
      .map((e) => (e.data as { text: string }).text)
      .join('');
    expect(streamed).toBe(answer);

    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.status).toBe('completed');
    expect(view.attempts).toBe(1);
    expect(view.result?.answer).toBe(answer);
    expect(view.result?.sources[0]?.documentId).toBe('tides');
    expect(view.result?.model).toBe('gpt-4o-mini');
    expect(view.result?.cached).toBe(false);
    expect(view.result?.validation.checks.map((c) => c.name)).toEqual([
      'non_empty',
      'length',
      'citations',
      'grounding',
    ]);
    expect(view.result?.usage.completionTokens).toBeGreaterThan(0);
    const t = view.result!.timings;
    expect(t.totalMs).toBeGreaterThanOrEqual(t.queueMs + t.retrievalMs + t.generationMs);
    const completed = events.at(-1)!.data as { result: unknown };
    expect(completed.result).toEqual(view.result);

    // The real openai client sent a streaming request with usage, sources in the user message.
    const request = llm.requests.at(-1)!.body as {
      stream: boolean;
      stream_options: unknown;
      messages: Array<{ role: string; content: string }>;
    };
    expect(request.stream).toBe(true);
    expect(request.stream_options).toEqual({ include_usage: true });
    expect(request.messages[0]!.role).toBe('system');
    expect(request.messages[0]!.content).not.toContain('What causes tides?');
    expect(request.messages.at(-1)!.content).toContain('gravitational pull');
  });

  it('resumes after any event id with exactly the remaining events, and 204 after the end', async () => {
    llm.reply(() => ({ text: 'Magma rises through the crust [1].' }));
    const { events: eventsUrl } = await askq.ask('Why does a volcano erupt?');
    const live = await followEvents(eventsUrl);

    const full = await readStream(eventsUrl);
    expect(full.status).toBe(200);
    expect(full.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(full.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(full.headers.get('x-accel-buffering')).toBe('no');
    expect(full.raw.startsWith('retry: 2000\n\n')).toBe(true);
    // A client arriving after completion gets the whole log, identical to what was streamed.
    expect(full.events).toEqual(live);

    for (let i = 0; i < full.events.length - 1; i++) {
      const after = full.events[i]!.id;
      const viaHeader = await readStream(eventsUrl, { 'last-event-id': after });
      expect(viaHeader.events).toEqual(full.events.slice(i + 1));
      const viaQuery = await readStream(`${eventsUrl}?lastEventId=${after}`);
      expect(viaQuery.events).toEqual(full.events.slice(i + 1));
    }
    const last = full.events.at(-1)!.id;
    expect((await readStream(eventsUrl, { 'last-event-id': last })).status).toBe(204);
  });

  it('resumes a live stream mid-answer with nothing lost and nothing repeated', async () => {
    // Grounded in the sources, so validation passes and no escalation re-streams the answer.
    const text = 'Spring tides happen at new and full moon, when the pulls line up [1].';
    llm.reply(() => ({ text, chunkDelayMs: 20 }));
    const { events: eventsUrl } = await askq.ask('What are spring tides?');
    const first = await followEvents(eventsUrl, {
      stopAfter: (got) => got.filter((e) => e.event === 'token').length >= 2,
    });
    const resumed = await followEvents(`${eventsUrl}?lastEventId=${first.at(-1)!.id}`);
    expect(resumed.some((e) => e.event === 'token')).toBe(true);
    const joined = [...first, ...resumed];
    expect(new Set(joined.map((e) => e.id)).size).toBe(joined.length);
    expect(joined).toEqual((await readStream(eventsUrl)).events);
    const tokens = joined
      .filter((e) => e.event === 'token')
      .map((e) => (e.data as { text: string }).text);
    expect(tokens.join('')).toBe(text);
  });

  it('serves the same stream, resume included, from another API process', async () => {
    const other = await startAskq({ prefix: askq.prefix, worker: false });
    try {
      llm.reply(() => ({ text: 'The Moon pulls the oceans [1].', chunkDelayMs: 5 }));
      const { id, events: eventsUrl } = await askq.ask('What pulls the oceans?');
      const viaOther = `${other.url}/v1/questions/${id}/events`;
      const first = await followEvents(viaOther, {
        stopAfter: (got) => got.some((e) => e.event === 'sources'),
      });
      const rest = await followEvents(`${viaOther}?lastEventId=${first.at(-1)!.id}`);
      expect([...first, ...rest]).toEqual((await readStream(eventsUrl)).events);
      expect(rest.at(-1)!.event).toBe('completed');
    } finally {
      await other.stop();
    }
  });

  it('delivers an event whose notification was lost at the next heartbeat', async () => {
    // No worker: the question stays queued until this test writes its end into the log, and
    // that write is never published, as when a cluster moves the API's subscriber mid-stream.
    const quiet = await startAskq({ worker: false, env: { SSE_HEARTBEAT_MS: '200' } });
    const redis = new Redis(inject('redisUrl'));
    try {
      const { id, events: eventsUrl } = await quiet.ask('Will this ever end?');
      // Written once the stream has replayed the log and is live.
      let live!: () => void;
      const replayed = new Promise<void>((resolve) => (live = resolve));
      const stream = followEvents(eventsUrl, {
        timeoutMs: 10_000,
        stopAfter: () => {
          live();
          return false;
        },
      });
      await replayed;
      const data = JSON.stringify({ status: 'cancelled' });
      await redis.xadd(`${quiet.prefix}:q:{${id}}:events`, '*', 'e', 'cancelled', 'd', data);
      const events = await stream;
      expect(events.map((e) => e.event)).toEqual(['status', 'cancelled']);
    } finally {
      await redis.quit();
      await quiet.stop();
    }
  });

  it('notices an event lost by pub/sub when the next one arrives, and sends both in order', async () => {
    // A long heartbeat, so only the gap can bring the lost event back within the test.
    const quiet = await startAskq({ worker: false, env: { SSE_HEARTBEAT_MS: '60000' } });
    const redis = new Redis(inject('redisUrl'));
    try {
      const { id, events: eventsUrl } = await quiet.ask('Will the lost one be found?');
      let live!: () => void;
      const replayed = new Promise<void>((resolve) => (live = resolve));
      const stream = followEvents(eventsUrl, {
        timeoutMs: 10_000,
        stopAfter: () => {
          live();
          return false;
        },
      });
      await replayed;
      // Logged as the script would, but never published: the message pub/sub lost.
      const keys = createKeys(quiet.prefix);
      const data = JSON.stringify({ status: 'active', attempt: 1 });
      const lost = await redis.xadd(keys.events(id), '*', 'e', 'status', 'd', data);
      await redis.hset(keys.question(id), 'lastEvent', lost!);
      const log = createEventLog(redis, keys, { maxLen: 1_000, ttlSeconds: 60 });
      await log.append(id, { event: 'cancelled', data: {} }, { set: { status: 'cancelled' } });
      const events = await stream;
      expect(events.map((e) => e.event)).toEqual(['status', 'status', 'cancelled']);
      expect(events[1]!.id).toBe(lost);
    } finally {
      await redis.quit();
      await quiet.stop();
    }
  });

  it('answers "no sources" without calling the model when the collection is empty', async () => {
    const before = llm.requests.length;
    const { events: eventsUrl } = await askq.ask('Anything at all?', { collection: 'empty-one' });
    const events = await followEvents(eventsUrl);
    const result = (events.at(-1)!.data as { result: { answer: string; sources: unknown[] } })
      .result;
    expect(result.sources).toEqual([]);
    expect(result.answer).toMatch(/no sources/i);
    expect(llm.requests.length).toBe(before);
  });

  it('retries a 5xx from the model with a retry event, then completes', async () => {
    let calls = 0;
    llm.reply(() =>
      ++calls === 1 ? { status: 503, error: 'overloaded' } : { text: 'Basalt is runny [1].' },
    );
    const { id, events: eventsUrl } = await askq.ask('Which lava is runny?');
    const events = await followEvents(eventsUrl);
    const n = names(events);
    expect(n).toContain('retry');
    const retry = events.find((e) => e.event === 'retry')!.data as {
      attempt: number;
      reason: string;
    };
    expect(retry).toEqual({ attempt: 2, reason: 'LLM_UNAVAILABLE' });
    expect(n.indexOf('retry')).toBeLessThan(n.lastIndexOf('status:active'));
    expect(n.at(-1)).toBe('completed');
    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.attempts).toBe(2);
  });

  it('fails at once with LLM_REJECTED on a 4xx from the model', async () => {
    llm.reply(() => ({ status: 400, error: 'bad request' }));
    const { id, events: eventsUrl } = await askq.ask('What is basalt?');
    const events = await followEvents(eventsUrl);
    expect(events.at(-1)!.event).toBe('failed');
    expect((events.at(-1)!.data as { error: { code: string } }).error.code).toBe('LLM_REJECTED');
    expect(names(events)).not.toContain('retry');
    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('LLM_REJECTED');
  });

  it('cancels an active question: the model stream is aborted and clients see cancelled', async () => {
    llm.reply(() => ({ text: 'slow '.repeat(200), chunkDelayMs: 50 }));
    const { id, events: eventsUrl } = await askq.ask('Tell me slowly about tides.');
    const seen = await followEvents(eventsUrl, {
      stopAfter: (got) => got.some((e) => e.event === 'token'),
    });
    const requestIndex = llm.requests.length - 1;
    const res = await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await llm.disconnected(requestIndex);
    const rest = await followEvents(`${eventsUrl}?lastEventId=${seen.at(-1)!.id}`);
    expect(rest.at(-1)!.event).toBe('cancelled');
    const again = await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('CONFLICT');
  });
});
