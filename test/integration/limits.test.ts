import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnswerCache, createKeys, type QuestionResult } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';
import { spawnApi, type AppProcess } from '../support/processes.js';

// The limits of SPEC 7, shared through Redis by two API processes: this one and a spawned one.
const KEYS = {
  rate: 'rate-tenant-key-0123456789',
  busy: 'busy-tenant-key-0123456789',
  idem: 'idem-tenant-key-0123456789',
  other: 'other-tenant-key-0123456789',
  cached: 'cached-tenant-key-0123456789',
};
const API_KEYS = Object.entries(KEYS)
  .map(([tenant, key]) => `${tenant}:${key}`)
  .join(',');
const env = { API_KEYS, RATE_LIMIT_PER_MINUTE: '6', TENANT_MAX_INFLIGHT: '3' };

let local: TestAskq;
let remote: AppProcess;

beforeAll(async () => {
  // No worker: questions stay queued, so in-flight counts are stable.
  local = await startAskq({ worker: false, env });
  remote = await spawnApi({
    ...env,
    REDIS_URL: (await import('vitest')).inject('redisUrl'),
    CHROMA_URL: (await import('vitest')).inject('chromaUrl'),
    REDIS_PREFIX: local.prefix,
  });
});
afterAll(async () => {
  await remote?.process.stop();
  await local?.stop();
});

const post = (
  base: string,
  tenant: keyof typeof KEYS,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  fetch(`${base}/v1/questions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${KEYS[tenant]}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });

describe('rate limit', () => {
  it('is shared across API processes and answers 429 RATE_LIMITED with Retry-After', async () => {
    // Every POST counts, even a rejected one: six bad bodies, alternating between the processes.
    for (let i = 0; i < 6; i++) {
      expect((await post(i % 2 === 0 ? local.url : remote.url, 'rate', {})).status).toBe(400);
    }
    const limited = await post(remote.url, 'rate', { question: 'One too many?' });
    expect(limited.status).toBe(429);
    const body = (await limited.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.message).toMatch(/per minute/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Documents draw from the same allowance.
    const ingest = await fetch(`${remote.url}/v1/documents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.rate}` },
      body: JSON.stringify({ documents: [{ id: 'limited', text: 'Never stored.' }] }),
    });
    expect(ingest.status).toBe(429);
    // Another tenant is not affected.
    expect((await post(local.url, 'other', { question: 'Unaffected?' })).status).toBe(202);
  });
});

describe('rate limit decided beside the cache lookup', () => {
  it('refuses a limited tenant with 429 even when the answer is cached, or its body is broken', async () => {
    // An answer in the exact cache for this tenant's question (default options: the empty
    // collection's version 0, cache generation 0).
    const redis = new Redis((await import('vitest')).inject('redisUrl'));
    try {
      const result: QuestionResult = {
        answer: 'Cached before the limit [1].',
        sources: [],
        model: 'extractive',
        route: 'fast',
        cached: false,
        usage: { promptTokens: 0, completionTokens: 0 },
        timings: { queueMs: 0, retrievalMs: 0, generationMs: 0, validationMs: 0, totalMs: 5 },
        validation: { passed: true, checks: [] },
      };
      const identity = {
        tenant: 'cached',
        collection: 'default',
        question: 'Is this answer cached?',
        model: 'auto',
        topK: 4,
      };
      const cache = createAnswerCache(redis, createKeys(local.prefix), { ttlSeconds: 60 });
      await cache.store(identity, { version: 0, generation: 0 }, result);
    } finally {
      redis.disconnect();
    }
    const question = { question: 'Is this answer cached?' };
    const hit = await post(local.url, 'cached', question);
    expect(hit.status).toBe(200);
    expect(((await hit.json()) as { result: QuestionResult }).result.answer).toBe(
      'Cached before the limit [1].',
    );
    for (let i = 0; i < 5; i++)
      expect((await post(remote.url, 'cached', question)).status).toBe(200);

    // The seventh request in the minute: the lookup ran beside the limit, but only the refusal
    // is answered, whatever else is wrong with the request.
    for (const res of [
      await post(local.url, 'cached', question),
      await post(remote.url, 'cached', {}),
      await fetch(`${local.url}/v1/questions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.cached}` },
        body: '{"question": ',
      }),
    ]) {
      expect(res.status).toBe(429);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    }
  });
});

describe('in-flight limit', () => {
  it('answers 429 past TENANT_MAX_INFLIGHT queued questions, and frees a slot on cancel', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(i % 2 ? remote.url : local.url, 'busy', { question: `Busy ${i}?` });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const full = await post(remote.url, 'busy', { question: 'Busy 3?' });
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('1');
    expect(((await full.json()) as { error: { message: string } }).error.message).toMatch(
      /at most 3/,
    );
    // A cancel frees its slot.
    const cancel = await fetch(`${local.url}/v1/questions/${ids[0]}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${KEYS.busy}` },
    });
    expect(cancel.status).toBe(200);
    expect((await post(remote.url, 'busy', { question: 'Busy 4?' })).status).toBe(202);
  });
});

describe('Idempotency-Key', () => {
  it('returns the same question for the same key and body, from either process', async () => {
    const body = { question: 'Exactly once?' };
    const first = await post(local.url, 'idem', body, { 'idempotency-key': 'order-42' });
    expect(first.status).toBe(202);
    const firstBody = (await first.json()) as { id: string };
    const again = await post(remote.url, 'idem', body, { 'idempotency-key': 'order-42' });
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual(firstBody);
    // Defaults count: the same request spelled out is the same request.
    const spelled = await post(
      local.url,
      'idem',
      { ...body, topK: 4, model: 'auto' },
      { 'idempotency-key': 'order-42' },
    );
    expect(((await spelled.json()) as { id: string }).id).toBe(firstBody.id);
  });

  it('answers 422 IDEMPOTENCY_MISMATCH for the same key with another body', async () => {
    await post(local.url, 'idem', { question: 'First body?' }, { 'idempotency-key': 'order-43' });
    const res = await post(
      remote.url,
      'idem',
      { question: 'Second body?' },
      { 'idempotency-key': 'order-43' },
    );
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'IDEMPOTENCY_MISMATCH',
    );
  });

  it('keeps keys per tenant, and rejects a malformed key', async () => {
    const a = await post(
      local.url,
      'idem',
      { question: 'Shared key?' },
      { 'idempotency-key': 'same' },
    );
    const b = await post(
      local.url,
      'other',
      { question: 'Other body entirely?' },
      { 'idempotency-key': 'same' },
    );
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(((await a.json()) as { id: string }).id).not.toBe(
      ((await b.json()) as { id: string }).id,
    );
    const bad = await post(
      local.url,
      'other',
      { question: 'x' },
      { 'idempotency-key': 'x'.repeat(300) },
    );
    expect(bad.status, await bad.clone().text()).toBe(400);
  });
});

describe('body size', () => {
  it('answers 413 over 64 KiB for a question', async () => {
    const res = await post(remote.url, 'other', { question: 'x'.repeat(70 * 1024) });
    expect(res.status).toBe(413);
  });
});
