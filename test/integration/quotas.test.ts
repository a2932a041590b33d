import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';

// SPEC 7's per-tenant quotas on what a tenant holds at once (open event streams, ingestions queued
// or running) and stores (collections, documents, chunks), and the allowance of GET requests of
// its own. Each is held by one tenant without touching another's.
const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const API_KEYS = `acme:${ACME},globex:${GLOBEX}`;
const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function refusal(res: Response) {
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

describe('what a tenant holds at once', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    // No worker: questions stay queued (their streams stay open), ingestions stay queued.
    askq = await startAskq({
      worker: false,
      env: { API_KEYS, TENANT_MAX_STREAMS: '2', TENANT_MAX_QUEUED_INGESTIONS: '2' },
    });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  const ask = async (key: string, question: string) => {
    const res = await askq.post('/v1/questions', { question, cache: false }, as(key));
    expect(res.status).toBe(202);
    return ((await res.json()) as { links: { events: string } }).links.events;
  };

  it('answers 429 past TENANT_MAX_STREAMS open event streams, per tenant, and frees one on close', async () => {
    const paths = [await ask(ACME, 'one?'), await ask(ACME, 'two?'), await ask(ACME, 'three?')];
    const open = (path: string, key: string, signal?: AbortSignal) =>
      fetch(askq.url + path, { headers: as(key), signal });
    const first = new AbortController();
    const streams = [await open(paths[0]!, ACME, first.signal), await open(paths[1]!, ACME)];
    expect(streams.map((s) => s.status)).toEqual([200, 200]);
    expect(await refusal(await open(paths[2]!, ACME))).toMatchObject({
      status: 429,
      retryAfter: expect.stringMatching(/^\d+$/),
      body: {
        error: { code: 'RATE_LIMITED', message: expect.stringMatching(/TENANT_MAX_STREAMS/) },
      },
    });
    // Another tenant's streams are counted apart.
    const theirs = await open(await ask(GLOBEX, 'mine?'), GLOBEX);
    expect(theirs.status).toBe(200);
    // Closing a stream gives its place back.
    first.abort();
    await vi.waitFor(
      async () => {
        const again = await open(paths[2]!, ACME);
        expect(again.status).toBe(200);
        await again.body?.cancel();
      },
      { timeout: 10_000, interval: 100 },
    );
    for (const s of [...streams, theirs]) await s.body?.cancel().catch(() => undefined);
  });

  it('answers 429 past TENANT_MAX_QUEUED_INGESTIONS, and a finished ingestion frees its place', async () => {
    const ingest = (key: string, id: string) =>
      askq.post(
        '/v1/documents',
        { collection: 'q', documents: [{ id, text: `Text ${id}.` }] },
        as(key),
      );
    const queued = [await ingest(ACME, 'a'), await ingest(ACME, 'b')];
    expect(queued.map((r) => r.status)).toEqual([202, 202]);
    expect(await refusal(await ingest(ACME, 'c'))).toMatchObject({
      status: 429,
      body: {
        error: { code: 'RATE_LIMITED', message: expect.stringMatching(/TENANT_MAX_QUEUED/) },
      },
    });
    expect((await ingest(GLOBEX, 'g')).status).toBe(202);
    // A worker takes them; as each ends, its lease goes with it.
    const worker = await askq.addWorker();
    try {
      for (const res of queued) {
        const { ingestionId } = (await res.json()) as { ingestionId: string };
        expect((await waitForIngestion(askq.url, ingestionId, as(ACME))).status).toBe('completed');
      }
      expect((await ingest(ACME, 'c')).status).toBe(202);
    } finally {
      await worker.stop('test finished');
    }
  });
});

/** Ingests as ACME and waits; a refusal comes back as its status and body. */
async function ingestAs(
  askq: TestAskq,
  collection: string,
  documents: Array<{ id: string; text: string }>,
) {
  const res = await askq.post('/v1/documents', { collection, documents }, as(ACME));
  if (res.status !== 202) return refusal(res);
  const { ingestionId } = (await res.json()) as { ingestionId: string };
  return { status: 202, view: await waitForIngestion(askq.url, ingestionId, as(ACME)) };
}

describe('what a tenant stores', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: {
        API_KEYS,
        TENANT_MAX_COLLECTIONS: '2',
        TENANT_MAX_DOCUMENTS: '3',
        TENANT_MAX_CHUNKS: '20',
      },
    });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  const ingest = (collection: string, documents: Array<{ id: string; text: string }>) =>
    ingestAs(askq, collection, documents);
  const quota = (variable: string) => ({
    status: 403,
    body: { error: { code: 'QUOTA_EXCEEDED', message: expect.stringContaining(variable) } },
  });

  it('refuses a collection past TENANT_MAX_COLLECTIONS with 403 QUOTA_EXCEEDED', async () => {
    expect(await ingest('one', [{ id: 'a', text: 'Alpha.' }])).toMatchObject({ status: 202 });
    expect(await ingest('two', [{ id: 'b', text: 'Beta.' }])).toMatchObject({ status: 202 });
    expect(await ingest('three', [{ id: 'c', text: 'Gamma.' }])).toMatchObject(
      quota('TENANT_MAX_COLLECTIONS'),
    );
    // The existing ones still take documents; another tenant has its own count.
    expect(await ingest('two', [{ id: 'c', text: 'Gamma.' }])).toMatchObject({ status: 202 });
    const theirs = await askq.post(
      '/v1/documents',
      { collection: 'three', documents: [{ text: 'Theirs.' }] },
      as(GLOBEX),
    );
    expect(theirs.status).toBe(202);
  });

  it('counts documents over all collections, and a document sent again replaces itself', async () => {
    // a, b and c are stored: a fourth is one too many, a new version of c is not.
    expect(await ingest('one', [{ id: 'd', text: 'Delta.' }])).toMatchObject(
      quota('TENANT_MAX_DOCUMENTS'),
    );
    expect(await ingest('two', [{ id: 'c', text: 'Gamma, again.' }])).toMatchObject({
      status: 202,
    });
  });

  it('refuses documents that would take the tenant past TENANT_MAX_CHUNKS', async () => {
    // About 30 chunks of 800 characters, replacing c's one.
    expect(await ingest('two', [{ id: 'c', text: 'word '.repeat(4_300) }])).toMatchObject(
      quota('TENANT_MAX_CHUNKS'),
    );
  });
});

describe('what one collection holds', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: { API_KEYS, COLLECTION_MAX_DOCUMENTS: '2', COLLECTION_MAX_CHUNKS: '6' },
    });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  const ingest = (collection: string, documents: Array<{ id: string; text: string }>) =>
    ingestAs(askq, collection, documents);

  it('refuses documents past COLLECTION_MAX_DOCUMENTS in one collection, not in another', async () => {
    expect(
      await ingest('one', [
        { id: 'a', text: 'Alpha.' },
        { id: 'b', text: 'Beta.' },
      ]),
    ).toMatchObject({ status: 202 });
    expect(await ingest('one', [{ id: 'c', text: 'Gamma.' }])).toMatchObject({
      status: 403,
      body: {
        error: {
          code: 'QUOTA_EXCEEDED',
          message: 'collection one may hold at most 2 documents (COLLECTION_MAX_DOCUMENTS)',
        },
      },
    });
    // Replacing one is no new document; another collection has its own count.
    expect(await ingest('one', [{ id: 'b', text: 'Beta, again.' }])).toMatchObject({ status: 202 });
    expect(await ingest('two', [{ id: 'c', text: 'Gamma.' }])).toMatchObject({ status: 202 });
  });

  it('refuses chunks past COLLECTION_MAX_CHUNKS', async () => {
    // About 10 chunks of 800 characters.
    expect(await ingest('two', [{ id: 'c', text: 'word '.repeat(1_500) }])).toMatchObject({
      status: 403,
      body: {
        error: {
          code: 'QUOTA_EXCEEDED',
          message: expect.stringContaining('COLLECTION_MAX_CHUNKS'),
        },
      },
    });
  });
});

describe('the allowance of GET requests', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      worker: false,
      env: { API_KEYS, READ_RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_PER_MINUTE: '100' },
    });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('answers 429 past READ_RATE_LIMIT_PER_MINUTE reads, apart from the allowance of writes', async () => {
    const read = () => fetch(`${askq.url}/v1/collections`, { headers: as(ACME) });
    for (let i = 0; i < 5; i++) expect((await read()).status).toBe(200);
    expect(await refusal(await read())).toMatchObject({
      status: 429,
      retryAfter: expect.stringMatching(/^\d+$/),
      body: { error: { code: 'RATE_LIMITED', message: expect.stringMatching(/reads per minute/) } },
    });
    // Writes, other tenants and probes are not held back by it.
    expect((await askq.post('/v1/questions', { question: 'still?' }, as(ACME))).status).toBe(202);
    expect((await fetch(`${askq.url}/v1/collections`, { headers: as(GLOBEX) })).status).toBe(200);
    expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${askq.url}/metrics`)).status).toBe(200);
  });
});
