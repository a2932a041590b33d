import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents, readStream } from '../support/sse-client.js';

// No worker: questions stay queued, which is what the cancel tests need.
let askq: TestAskq;

beforeAll(async () => {
  askq = await startAskq({ worker: false, env: { SSE_HEARTBEAT_MS: '50' } });
});
afterAll(async () => {
  await askq?.stop();
});

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await res.json()) as {
    error: { code: string; message: string; details?: unknown };
  };
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expect(JSON.stringify(body)).not.toMatch(/at .+\.ts:\d+/); // never a stack trace
  return body.error;
}

describe('bad requests get the SPEC error shape', () => {
  it('rejects an empty or blank question with 400 and the field path', async () => {
    for (const question of ['', '   ']) {
      const error = await expectError(
        await askq.post('/v1/questions', { question }),
        400,
        'INVALID_REQUEST',
      );
      expect(error.details).toEqual([expect.objectContaining({ path: 'question' })]);
    }
  });

  it('rejects a missing question', async () => {
    const error = await expectError(await askq.post('/v1/questions', {}), 400, 'INVALID_REQUEST');
    expect(error.details).toEqual([expect.objectContaining({ path: 'question' })]);
  });

  it('rejects a question over 4000 characters, and accepts exactly 4000', async () => {
    await expectError(
      await askq.post('/v1/questions', { question: 'x'.repeat(4001) }),
      400,
      'INVALID_REQUEST',
    );
    expect((await askq.post('/v1/questions', { question: 'x'.repeat(4000) })).status).toBe(202);
  });

  it('rejects unknown fields and out-of-range options', async () => {
    const unknown = await expectError(
      await askq.post('/v1/questions', { question: 'hi', colour: 'blue' }),
      400,
      'INVALID_REQUEST',
    );
    expect(JSON.stringify(unknown.details)).toContain('colour');
    await expectError(
      await askq.post('/v1/questions', { question: 'hi', topK: 21 }),
      400,
      'INVALID_REQUEST',
    );
    await expectError(
      await askq.post('/v1/questions', { question: 'hi', model: 'huge' }),
      400,
      'INVALID_REQUEST',
    );
    await expectError(
      await askq.post('/v1/questions', { question: 'hi', collection: '../etc' }),
      400,
      'INVALID_REQUEST',
    );
  });

  it('rejects malformed JSON with 400', async () => {
    await expectError(
      await askq.post('/v1/questions', '{"question": "hi"'),
      400,
      'INVALID_REQUEST',
    );
  });

  it('rejects a body that is not JSON with 415', async () => {
    const res = await fetch(`${askq.url}/v1/questions`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'What causes tides?',
    });
    await expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const none = await fetch(`${askq.url}/v1/questions`, { method: 'POST', body: undefined });
    await expectError(none, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('rejects a body over 64 KiB with 413', async () => {
    const body = JSON.stringify({ question: 'hi', pad: 'x'.repeat(70 * 1024) });
    await expectError(await askq.post('/v1/questions', body), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers 404 for unknown ids on every question route, and for unknown routes', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    await expectError(await fetch(`${askq.url}/v1/questions/${id}`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${askq.url}/v1/questions/${id}/events`), 404, 'NOT_FOUND');
    await expectError(
      await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' }),
      404,
      'NOT_FOUND',
    );
    await expectError(await fetch(`${askq.url}/v1/questions/not:an:id`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${askq.url}/v1/nothing-here`), 404, 'NOT_FOUND');
  });

  it('answers a malformed percent-encoding in a path with 400, not 500', async () => {
    await expectError(await fetch(`${askq.url}/v1/questions/%zz`), 400, 'INVALID_REQUEST');
    await expectError(
      await fetch(`${askq.url}/v1/questions/%E0%A4%A/events`),
      400,
      'INVALID_REQUEST',
    );
  });

  it('rejects a malformed Last-Event-ID with 400', async () => {
    const { events } = await askq.ask('Is this id well formed?');
    await expectError(
      await fetch(events, { headers: { 'last-event-id': 'latest' } }),
      400,
      'INVALID_REQUEST',
    );
    const injected = `${events}?lastEventId=${encodeURIComponent('1-0\r\nevent: completed')}`;
    await expectError(await fetch(injected), 400, 'INVALID_REQUEST');
  });
});

describe('a queued question', () => {
  it('is accepted with 202, Location and links, and readable by GET', async () => {
    const res = await askq.post('/v1/questions', { question: '  What is queued?  ' });
    expect(res.status).toBe(202);
    const body = (await res.json()) as {
      id: string;
      status: string;
      createdAt: string;
      links: { self: string; events: string };
    };
    expect(res.headers.get('location')).toBe(`/v1/questions/${body.id}`);
    expect(body).toEqual({
      id: body.id,
      status: 'queued',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      links: { self: `/v1/questions/${body.id}`, events: `/v1/questions/${body.id}/events` },
    });
    const view = (await (await fetch(askq.url + body.links.self)).json()) as QuestionView;
    expect(view).toMatchObject({
      id: body.id,
      status: 'queued',
      question: 'What is queued?',
      collection: 'default',
      attempts: 0,
    });
  });

  it('is cancelled at once by DELETE (200), its stream ends with cancelled, and a second DELETE is 409', async () => {
    const { id, events } = await askq.ask('Cancel me while I wait?');
    const streaming = followEvents(events);
    const res = await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as QuestionView).status).toBe('cancelled');
    const received = await streaming;
    expect(received.map((e) => e.event)).toEqual(['status', 'cancelled']);
    expect(received[0]!.data).toEqual({ status: 'queued', attempt: 1 });

    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.status).toBe('cancelled');
    expect(view.finishedAt).toEqual(expect.any(String));
    const again = await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
    // The job is gone from the queue: nothing will run it later.
    const reread = await readStream(events);
    expect(reread.events.map((e) => e.event)).toEqual(['status', 'cancelled']);
  });
});

describe('an open stream', () => {
  it('starts with retry: and sends : ping comments while nothing happens', async () => {
    const { events } = await askq.ask('Will anyone answer me?');
    const controller = new AbortController();
    const res = await fetch(events, { signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes(': ping\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    controller.abort();
    expect(text.startsWith('retry: 2000\n\n')).toBe(true);
    expect(text).toContain('event: status');
    expect(text).toContain(': ping\n\n');
  });
});

describe('stream subscriptions', () => {
  it('are dropped for streams not served live: unknown, finished, and closed ones', async () => {
    const redis = new Redis(inject('redisUrl'));
    try {
      const channels = () => redis.pubsub('SHARDCHANNELS', `${askq.prefix}:*`) as Promise<string[]>;
      const noneLeft = () =>
        vi.waitFor(async () => expect(await channels()).toEqual([]), {
          timeout: 5_000,
          interval: 20,
        });
      // Streams of earlier tests may still be closing.
      await noneLeft();

      // Each request subscribes at once, while it reads the record.
      const unknown = await fetch(`${askq.url}/v1/questions/${randomUUID()}/events`);
      expect(unknown.status).toBe(404);
      const { id, events } = await askq.ask('Cancelled before anyone streamed me?');
      await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' });
      expect((await readStream(events)).events.map((e) => e.event)).toEqual([
        'status',
        'cancelled',
      ]);

      // A live stream, subscribed on the same connection after the two above: once it is
      // streaming, their subscriptions have reached Redis too.
      const live = await askq.ask('Is anyone streaming me?');
      const controller = new AbortController();
      const res = await fetch(live.events, { signal: controller.signal });
      const reader = res.body!.getReader();
      await reader.read();
      expect(await channels()).toContain(`${askq.prefix}:q:{${live.id}}:ch`);
      controller.abort();
      await noneLeft();
    } finally {
      redis.disconnect();
    }
  });
});

describe('health', () => {
  it('is alive and ready when Redis and Chroma answer', async () => {
    expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${askq.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', chroma: 'ok' } });
  });
});
