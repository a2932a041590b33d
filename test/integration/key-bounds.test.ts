import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// A soak: a few thousand questions (asked again, reworded, cancelled, followed up, over the
// OpenAI route, with idempotency keys), a few hundred documents (replaced and deleted) and the
// cache entries they make, from two tenants; then every key under the deployment's prefix is
// read. Each must expire, or be one of the documented bounded keys below (the README's table
// "Every key askq writes to Redis expires, or is bounded…"). A new kind of key that does neither
// fails this test until it gets a TTL or a bound and a line here and there.
const TENANTS = ['one', 'two'] as const;
const headers = (tenant: string) => ({ authorization: `Bearer soak-key-of-${tenant}-0000` });
const QUESTIONS = 2_000;
const IN_FLIGHT = 16;

let askq: TestAskq;
let redis: Redis;

/** Keys without a TTL, and what bounds each (by its name after the prefix). */
const BOUNDED: Array<{ pattern: RegExp; bound: string }> = [
  { pattern: /^:deadlines$/, bound: 'one entry per open question, until the sweep sees it end' },
  { pattern: /^:c:\{[^}]+\}$/, bound: 'a collection’s state: one per collection (quota)' },
  { pattern: /^:c:\{[^}]+\}:docs$/, bound: 'one field per document (quota), tombstones pruned' },
  { pattern: /^:c:\{[^}]+\}:tombstones$/, bound: 'deleted documents of the last 8 days' },
  { pattern: /^:t:[^:]+:collections$/, bound: 'one member per collection (quota)' },
  { pattern: /^:lex:\{[^}]+\}:(?:postings|chunks|stats)$/, bound: 'per chunk (quota): its terms' },
  { pattern: /^:cache:stats:\{[^}]+\}$/, bound: 'a few counters per tenant' },
  { pattern: /^:cache:tenants$/, bound: 'one member per tenant' },
  { pattern: /^:cache:generation$/, bound: 'one counter' },
  { pattern: /^:workers$/, bound: 'one field per live worker, stale ones dropped' },
  // BullMQ's own keys: jobs are removed by age and count (jobs.ts), its event streams trimmed.
  { pattern: /^:s\d+\}:|^\}:/, bound: 'BullMQ queue keys (removeOnComplete/removeOnFail)' },
];

beforeAll(async () => {
  askq = await startAskq({
    env: {
      API_KEYS: TENANTS.map((t) => `${t}:soak-key-of-${t}-0000`).join(','),
      RATE_LIMIT_PER_MINUTE: '1000000',
      READ_RATE_LIMIT_PER_MINUTE: '1000000',
      TENANT_MAX_INFLIGHT: '100',
    },
  });
  redis = new Redis(inject('redisUrl'));
}, 120_000);
afterAll(async () => {
  redis?.disconnect();
  await askq?.stop();
});

async function post(
  tenant: string,
  path: string,
  body: unknown,
  extra: Record<string, string> = {},
) {
  const res = await fetch(`${askq.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers(tenant), ...extra },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function ingest(tenant: string, collection: string, documents: unknown[]) {
  const { status, body } = await post(tenant, '/v1/documents', { collection, documents });
  expect(status, JSON.stringify(body)).toBe(202);
  await waitForIngestion(askq.url, body.ingestionId as string, headers(tenant));
}

/** Runs `count` tasks, `width` at a time. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

it('leaves no key in Redis that neither expires nor has a documented bound', async () => {
  // Documents: 300 in all, in three collections per tenant; some replaced, some deleted.
  for (const tenant of TENANTS) {
    for (const collection of ['a', 'b', 'c']) {
      const docs = Array.from({ length: 50 }, (_, i) => ({
        id: `doc-${i}`,
        text: `Document ${i} of ${collection}: item ${i} costs ${i * 3} euros and ships in ${i % 7} days.`,
      }));
      await ingest(tenant, collection, docs);
      await ingest(
        tenant,
        collection,
        docs.slice(0, 10).map((d) => ({ ...d, text: `${d.text} Updated.` })),
      );
      for (const doc of docs.slice(40)) {
        const res = await fetch(`${askq.url}/v1/documents/${doc.id}?collection=${collection}`, {
          method: 'DELETE',
          headers: headers(tenant),
        });
        expect(res.status).toBe(202);
        const { ingestionId } = (await res.json()) as { ingestionId: string };
        await waitForIngestion(askq.url, ingestionId, headers(tenant));
      }
    }
  }

  // Questions: new ones, repeats (exact hits), rewordings (semantic), cancels, follow-ups.
  let previous: string | undefined;
  await pool(QUESTIONS, IN_FLIGHT, async (i) => {
    const tenant = TENANTS[i % 2]!;
    const collection = ['a', 'b', 'c'][i % 3]!;
    const item = i % 120;
    const kind = i % 10;
    if (kind === 9) {
      const { body } = await post(tenant, '/v1/chat/completions', {
        model: `askq/${collection}`,
        messages: [{ role: 'user', content: `How much does item ${item} cost?` }],
      });
      expect(body.object, JSON.stringify(body)).toBe('chat.completion');
      return;
    }
    const question =
      kind < 4
        ? `How much does item ${item} cost?`
        : kind < 6
          ? `What is the price of item ${item}?`
          : `In how many days does item ${item} ship, case ${i}?`;
    const extra: Record<string, string> = kind === 8 ? { 'idempotency-key': `soak-${i}` } : {};
    const { status, body } = await post(
      tenant,
      '/v1/questions',
      {
        question,
        collection,
        ...(kind === 7 && previous ? { previousQuestionId: previous } : {}),
      },
      extra,
    );
    if (status === 409 || status === 404) return; // a follow-up of another tenant's or unfinished one
    expect([200, 202], JSON.stringify(body)).toContain(status);
    const id = body.id as string;
    if (kind === 6) {
      await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE', headers: headers(tenant) });
    }
    const events = await followEvents(`${askq.url}/v1/questions/${id}/events`, {
      headers: headers(tenant),
    });
    if (events.at(-1)?.event === 'completed' && tenant === 'one') previous = id;
  });

  // Every key of this deployment: its TTL, or a documented bound.
  const unbounded: string[] = [];
  const kinds = new Set<string>();
  for (const match of [`${askq.prefix}:*`, `{${askq.prefix}}:*`, `{${askq.prefix}:s*`]) {
    for await (const batch of redis.scanStream({ match, count: 1_000 }) as AsyncIterable<
      string[]
    >) {
      const ttls = await Promise.all(batch.map((key) => redis.pttl(key)));
      batch.forEach((key, i) => {
        const rest = key.startsWith('{')
          ? key.slice(askq.prefix.length + 1)
          : key.slice(askq.prefix.length);
        const bounded = BOUNDED.find((b) => b.pattern.test(rest));
        // -2: gone since the scan saw it (a write in flight that finished).
        if (ttls[i] === -2) return;
        if (ttls[i]! >= 0) kinds.add('expires');
        else if (bounded) kinds.add(bounded.bound);
        else unbounded.push(key);
      });
    }
  }
  expect(unbounded).toEqual([]);
  // The scan saw the kinds of keys a soak makes, so an empty list means something.
  expect(kinds).toContain('expires');
  expect(kinds).toContain('one field per document (quota), tombstones pruned');
  expect(kinds).toContain('per chunk (quota): its terms');
}, 600_000);
