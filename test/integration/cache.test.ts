import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  AskRequest,
  createAnswerCache,
  createKeys,
  type CacheStats,
  type QuestionResult,
  type QuestionView,
} from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { createFakeLlm, promptSources, type FakeLlm } from '../support/fake-llm.js';
import { followEvents, type ReceivedEvent } from '../support/sse-client.js';

// The answer cache must be fast when it hits and never wrong: not across options, negations,
// numbers, tenants, document changes, or answers that failed validation.
const DOCS = [
  {
    id: 'tides',
    title: 'Tides',
    text: 'Tides are caused by the gravitational pull of the Moon and the Sun. In 2023 the highest tide was 14 metres; in 2024 it was 15 metres.',
  },
];
const ANSWER = 'Tides are caused by the pull of the Moon and the Sun [1].';
const ADMIN_KEY = 'admin-key-for-cache-tests-0123456789';

let llm: FakeLlm;
let askq: TestAskq;

beforeAll(async () => {
  llm = await createFakeLlm();
  llm.reply(() => ({ text: ANSWER }));
  askq = await startAskq({ env: { LLM_BASE_URL: llm.baseURL, ADMIN_API_KEY: ADMIN_KEY } });
  await askq.seed(DOCS);
});
afterAll(async () => {
  await askq?.stop();
  await llm?.close();
});

const chatCalls = () => llm.requests.filter((r) => r.path.endsWith('/chat/completions')).length;
const resultOf = (events: ReceivedEvent[]) =>
  (events.at(-1)!.data as { result: QuestionResult }).result;

/** Asks and follows the stream to the end; returns how the POST answered and the result. */
async function ask(question: string, extra: Record<string, unknown> = {}, app = askq) {
  const asked = await app.ask(question, { collection: 'default', ...extra });
  const events = await followEvents(asked.events);
  return { ...asked, events, result: resultOf(events) };
}

describe('the exact cache', () => {
  it('answers the same question again with 200 and the result, without calling the model', async () => {
    const first = await ask('How are tides caused?');
    expect(first.status).toBe(202);
    expect(first.result.cached).toBe(false);
    const calls = chatCalls();

    const res = await askq.post('/v1/questions', { question: '  how are TIDES caused ' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      id: string;
      status: string;
      cached: boolean;
      result: QuestionResult;
      links: { events: string };
    };
    expect(body).toMatchObject({ status: 'completed', cached: true });
    expect(body.result).toMatchObject({
      answer: first.result.answer,
      cached: true,
      sources: first.result.sources,
    });
    expect(body.result.usage).toEqual({ promptTokens: 0, completionTokens: 0 });
    expect(chatCalls()).toBe(calls);

    // It is a question like any other: GET and its event stream work.
    const view = (await (
      await fetch(`${askq.url}/v1/questions/${body.id}`)
    ).json()) as QuestionView;
    expect(view).toMatchObject({ id: body.id, status: 'completed', result: { cached: true } });
    const events = await followEvents(askq.url + body.links.events);
    expect(events.map((e) => e.event)).toEqual(['sources', 'token', 'completed']);
    expect((events[1]!.data as { text: string }).text).toBe(first.result.answer);
  });

  it('misses when an option that changes the answer differs, and when cache is false', async () => {
    await ask('What pulls the oceans?');
    const calls = chatCalls();
    expect((await ask('What pulls the oceans?', { topK: 2 })).status).toBe(202);
    expect((await ask('What pulls the oceans?', { model: 'smart' })).status).toBe(202);
    expect((await ask('What pulls the oceans?', { cache: false })).status).toBe(202);
    expect(chatCalls()).toBe(calls + 3);
    expect((await ask('What pulls the oceans?')).status).toBe(200);
  });

  it('never stores an answer that failed validation', async () => {
    llm.reply(() => ({ text: 'Bananas sing opera on Tuesdays [1].' }));
    try {
      const first = await ask('Do bananas affect tides?', { model: 'smart' });
      expect(first.result.validation.passed).toBe(false);
      const calls = chatCalls();
      const again = await ask('Do bananas affect tides?', { model: 'smart' });
      expect(again.status).toBe(202);
      expect(again.result.cached).toBe(false);
      expect(chatCalls()).toBe(calls + 1);
    } finally {
      llm.reply(() => ({ text: ANSWER }));
    }
  });
});

describe('the semantic cache', () => {
  it('answers a reworded question from the cache, streamed through the normal stages', async () => {
    await ask('What causes tides?');
    const calls = chatCalls();
    const paraphrase = await ask('what is the cause of tides');
    expect(paraphrase.status).toBe(202); // not the same text: the exact layer misses
    expect(paraphrase.result).toMatchObject({ cached: true, answer: ANSWER });
    expect(chatCalls()).toBe(calls);
    const names = paraphrase.events.map((e) =>
      e.event === 'stage'
        ? `${(e.data as { stage: string }).stage}:${(e.data as { state: string }).state}`
        : e.event,
    );
    expect(names).toEqual(
      expect.arrayContaining([
        'retrieval:completed',
        'sources',
        'generation:started',
        'token',
        'validation:completed',
        'completed',
      ]),
    );
  });

  it('misses a negated or renumbered rewording, however similar', async () => {
    await ask('What was the highest tide in 2023?');
    const calls = chatCalls();
    const negated = await ask('What was not the highest tide in 2023?');
    expect(negated.result.cached).toBe(false);
    const renumbered = await ask('What was the highest tide in 2024?');
    expect(renumbered.result.cached).toBe(false);
    expect(chatCalls()).toBe(calls + 2);
  });
});

describe('invalidation', () => {
  it('retires cached answers as soon as the collection changes', async () => {
    await ask('Which bodies pull the tides?', { collection: 'moving' }).catch(() => undefined);
    const moving = await askq.seed(DOCS, 'moving');
    expect(moving.status).toBe('completed');
    await ask('Which bodies pull the tides?', { collection: 'moving' });
    expect((await ask('Which bodies pull the tides?', { collection: 'moving' })).status).toBe(200);
    const calls = chatCalls();
    // A new document: version bump.
    const res = await askq.post('/v1/documents', {
      collection: 'moving',
      documents: [{ id: 'more', text: 'Neap tides are weaker tides.' }],
    });
    await waitForIngestion(askq.url, ((await res.json()) as { ingestionId: string }).ingestionId);
    const after = await ask('Which bodies pull the tides?', { collection: 'moving' });
    expect(after.status).toBe(202);
    expect(after.result.cached).toBe(false);
    // Nor does the semantic layer serve the old answer.
    const reworded = await ask('which bodies pull the tide', { collection: 'moving' });
    expect(reworded.result.cached).toBe(true); // the new answer, stored after the change
    expect(chatCalls()).toBe(calls + 1);
  });

  it('DELETE /v1/cache (admin) clears everything; stats count hits, misses and entries', async () => {
    await ask('Is the Sun involved in tides?');
    await ask('Is the Sun involved in tides?');
    const stats = (await (await fetch(`${askq.url}/v1/cache/stats`)).json()) as CacheStats;
    expect(stats.exact.hits).toBeGreaterThanOrEqual(1);
    expect(stats.exact.misses).toBeGreaterThanOrEqual(1);
    expect(stats.entries).toBeGreaterThanOrEqual(1);
    expect(stats.hitRate).toBeGreaterThan(0);
    expect(stats.estimatedSecondsSaved).toBeGreaterThan(0);

    expect((await fetch(`${askq.url}/v1/cache`, { method: 'DELETE' })).status).toBe(401);
    const cleared = await fetch(`${askq.url}/v1/cache`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(cleared.status).toBe(200);
    expect(((await cleared.json()) as { entries: number }).entries).toBe(stats.entries);
    const calls = chatCalls();
    const after = await ask('Is the Sun involved in tides?');
    expect(after.status).toBe(202);
    expect(after.result.cached).toBe(false);
    expect(chatCalls()).toBe(calls + 1);
    const now = (await (await fetch(`${askq.url}/v1/cache/stats`)).json()) as CacheStats;
    expect(now.entries).toBe(1);
  });
});

describe('in-flight coalescing', () => {
  it('makes twenty concurrent identical questions one model call', async () => {
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 15 }));
    try {
      const calls = chatCalls();
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          askq.post('/v1/questions', { question: 'Why do tides rise twice a day?' }),
        ),
      );
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{
        id: string;
        coalesced?: boolean;
        links: { events: string };
      }>;
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(202));
      expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
      expect(bodies.filter((b) => b.coalesced === true)).toHaveLength(19);
      const streams = await Promise.all(
        bodies.slice(0, 5).map((b) => followEvents(askq.url + b.links.events)),
      );
      expect(streams.every((s) => s.at(-1)!.event === 'completed')).toBe(true);
      expect(chatCalls()).toBe(calls + 1);
    } finally {
      llm.reply(() => ({ text: ANSWER }));
    }
  });
});

describe('in-flight registrations', () => {
  // What a POST finds registered under its question's key decides whether it joins or runs.
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(() => redis?.quit());

  const registration = async (question: string) => {
    const keys = createKeys(askq.prefix);
    const cache = createAnswerCache(redis, keys, { ttlSeconds: 60 });
    const identity = { tenant: 'default', ...AskRequest.parse({ question }) };
    const { epoch } = await cache.lookup(identity);
    return { keys, key: cache.inFlightKey(identity, epoch) };
  };
  const post = async (question: string) => {
    const res = await askq.post('/v1/questions', { question });
    return {
      status: res.status,
      body: (await res.json()) as QuestionView & { coalesced?: boolean },
    };
  };

  it('joins a registered question that has not finished', async () => {
    const question = 'Is the Moon part of the tides, registered?';
    const { keys, key } = await registration(question);
    const owner = randomUUID();
    await redis.hset(keys.question(owner), {
      tenant: 'default',
      question,
      collection: 'default',
      model: 'auto',
      topK: '4',
      cache: 'true',
      createdAt: String(Date.now()),
      attempts: '0',
      status: 'active',
    });
    await redis.set(key, owner, 'PX', 60_000);
    const { status, body } = await post(question);
    expect(status).toBe(202);
    expect(body).toMatchObject({ id: owner, status: 'active', coalesced: true });
  });

  it.each([
    ['whose question has finished', 'finished', { status: 'completed' }],
    ['whose question no longer exists', 'gone', undefined],
    // It is about to end `cancelled`: joining it would cancel the newcomer's question too.
    [
      'whose question has a cancel recorded',
      'cancelling',
      { status: 'active', cancelRequested: '1' },
    ],
  ])('takes over a registration %s', async (_, label, owned) => {
    const question = `Does the Sun pull the sea, ${label}?`;
    const { keys, key } = await registration(question);
    const owner = randomUUID();
    if (owned) await redis.hset(keys.question(owner), { tenant: 'default', ...owned });
    await redis.set(key, owner, 'PX', 60_000);
    const { status, body } = await post(question);
    expect(status).toBe(202);
    expect(body.coalesced).not.toBe(true);
    expect(body.id).not.toBe(owner);
    expect(await redis.get(key)).toBe(body.id);
    const events = await followEvents(`${askq.url}/v1/questions/${body.id}/events`);
    expect(events.at(-1)!.event).toBe('completed');
  });
});

describe('in-flight registrations after the documents changed', () => {
  it('joins a question of the new epoch, never one still answering from the old documents', async () => {
    const redis = new Redis(inject('redisUrl'));
    try {
      const collection = 'epochs';
      const keys = createKeys(askq.prefix);
      const cache = createAnswerCache(redis, keys, { ttlSeconds: 60 });
      const identity = (question: string) => ({
        tenant: 'default',
        ...AskRequest.parse({ question, collection }),
      });
      const register = async (question: string) => {
        const { epoch } = await cache.lookup(identity(question));
        const owner = randomUUID();
        await redis.hset(keys.question(owner), {
          tenant: 'default',
          question,
          collection,
          model: 'auto',
          topK: '4',
          cache: 'true',
          createdAt: String(Date.now()),
          attempts: '0',
          status: 'active',
        });
        await redis.set(cache.inFlightKey(identity(question), epoch), owner, 'PX', 60_000);
        return { owner, epoch };
      };
      const ask = async (question: string) => {
        const res = await askq.post('/v1/questions', { question, collection });
        expect(res.status).toBe(202);
        return (await res.json()) as { id: string; coalesced?: boolean };
      };

      // The API learns this collection's epoch (no documents yet), and a question is answering
      // from that state.
      await ask('Warm up?');
      const question = 'Which epoch is this question in?';
      const old = await register(question);
      // The documents change: a new epoch.
      const res = await askq.post('/v1/documents', { collection, documents: DOCS.slice(0, 1) });
      const { ingestionId } = (await res.json()) as { ingestionId: string };
      expect((await waitForIngestion(askq.url, ingestionId)).status).toBe('completed');

      // Asked now, it must not join the run that answers from the old documents.
      const fresh = await ask(question);
      expect(fresh.coalesced).not.toBe(true);
      expect(fresh.id).not.toBe(old.owner);

      // A question registered in the new epoch is joined.
      const other = 'Which epoch is this other question in?';
      const current = await register(other);
      expect(current.epoch.version).toBeGreaterThan(old.epoch.version);
      expect(await ask(other)).toMatchObject({ id: current.owner, coalesced: true });
    } finally {
      redis.disconnect();
    }
  });
});

describe('tenants', () => {
  const KEYS = { acme: 'acme-key-0123456789abcdef', globex: 'globex-key-0123456789abcdef' };
  let tenants: TestAskq;
  const as = (tenant: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[tenant]}` });

  beforeAll(async () => {
    tenants = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}` },
    });
    for (const tenant of ['acme', 'globex'] as const) {
      const res = await tenants.post('/v1/documents', { documents: DOCS }, as(tenant));
      const { ingestionId } = (await res.json()) as { ingestionId: string };
      const view = (await (
        await fetch(`${tenants.url}/v1/ingestions/${ingestionId}`, { headers: as(tenant) })
      ).json()) as { status: string };
      expect(view.status).not.toBe('failed');
    }
    // Both ingestions done before anyone asks.
    await new Promise<void>((resolve, reject) => {
      const check = async () => {
        const lists = await Promise.all(
          (['acme', 'globex'] as const).map(
            async (t) =>
              (
                (await (
                  await fetch(`${tenants.url}/v1/collections`, { headers: as(t) })
                ).json()) as { collections: Array<{ documents: number }> }
              ).collections,
          ),
        );
        if (lists.every((c) => c[0]?.documents === 1)) resolve();
        else setTimeout(() => void check().catch(reject), 20);
      };
      void check().catch(reject);
    });
  });
  afterAll(async () => {
    await tenants?.stop();
  });

  it("never serves one tenant another tenant's cached answer", async () => {
    const askAs = async (tenant: keyof typeof KEYS) => {
      const res = await tenants.post(
        '/v1/questions',
        { question: 'What causes the tides?' },
        as(tenant),
      );
      const body = (await res.json()) as { links: { events: string } };
      const events = await followEvents(tenants.url + body.links.events, { headers: as(tenant) });
      return { status: res.status, result: resultOf(events) };
    };
    expect((await askAs('acme')).status).toBe(202);
    expect((await askAs('acme')).status).toBe(200);
    const calls = chatCalls();
    const other = await askAs('globex');
    expect(other.status).toBe(202);
    expect(other.result.cached).toBe(false);
    expect(chatCalls()).toBe(calls + 1);
    const acmeStats = (await (
      await fetch(`${tenants.url}/v1/cache/stats`, { headers: as('acme') })
    ).json()) as CacheStats;
    const globexStats = (await (
      await fetch(`${tenants.url}/v1/cache/stats`, { headers: as('globex') })
    ).json()) as CacheStats;
    expect(acmeStats.exact).toMatchObject({ hits: 1, misses: 1 });
    expect(globexStats.exact).toMatchObject({ hits: 0, misses: 1 });
  });

  it('rejects requests without a valid key', async () => {
    expect((await tenants.post('/v1/questions', { question: 'hi' })).status).toBe(401);
    expect(
      (await tenants.post('/v1/questions', { question: 'hi' }, { authorization: 'Bearer nope' }))
        .status,
    ).toBe(401);
  });
});

describe('the semantic guard', () => {
  const GUARDED = [
    {
      id: 'greywater',
      text: 'A greywater system under 250 litres per day needs no permit. A system over 250 litres per day needs a construction permit.',
    },
    {
      id: 'streams',
      text: 'A client resumes an event stream by sending the Last-Event-ID header with the id of the last event it saw.',
    },
    { id: 'roofs', text: 'Solar panels on a roof can power a car while it is parked at home.' },
    {
      id: 'vans',
      text: 'A vehicle rarely runs on solar panels: a vehicle needs far more power than its panels give.',
    },
  ];
  beforeAll(async () => {
    // Grounded answers (only those are cached): the first source's text, cited.
    llm.reply((req) => ({ text: `${promptSources(req)[0]?.text ?? ANSWER} [1]` }));
    expect((await askq.seed(GUARDED, 'guarded')).status).toBe('completed');
  });
  afterAll(() => llm.reply(() => ({ text: ANSWER })));
  const inGuarded = (question: string, extra: Record<string, unknown> = {}) =>
    ask(question, { collection: 'guarded', ...extra });

  it('serves a paraphrase and refuses the opposite qualifier, however close their embeddings', async () => {
    await inGuarded('How do I resume an event stream?');
    expect((await inGuarded('How can an event stream be resumed?')).result.cached).toBe(true);

    await inGuarded('Do I need a permit for a greywater system under 250 litres per day?');
    const over = await inGuarded(
      'Do I need a permit for a greywater system over 250 litres per day?',
    );
    expect(over.result.cached).toBe(false);
  });

  it('refuses, and counts, a hit whose sources are not the ones the question retrieves', async () => {
    const scrape = async () =>
      Number(
        /^askq_cache_lookups_total\{layer="semantic",result="wrong"[^}]*\} (\d+)/m.exec(
          await (await fetch(`http://127.0.0.1:${askq.worker!.metricsPort}/metrics`)).text(),
        )?.[1],
      );
    const before = await scrape();
    // "car" and "vehicle" are synonyms to the guard, but each word finds its own document.
    const car = await inGuarded('Can solar panels power a car?', { topK: 1 });
    expect(car.result.sources.map((s) => s.documentId)).toEqual(['roofs']);
    const vehicle = await inGuarded('Can solar panels power a vehicle?', { topK: 1 });
    expect(vehicle.result.cached).toBe(false);
    expect(vehicle.result.sources.map((s) => s.documentId)).toEqual(['vans']);
    expect(await scrape()).toBe(before + 1);
  });
});
