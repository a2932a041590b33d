import { ChromaClient } from 'chromadb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CollectionView, IngestionView, QuestionView, Source } from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

let askq: TestAskq;
let chroma: ChromaClient;

beforeAll(async () => {
  askq = await startAskq();
  const url = new URL(inject('chromaUrl'));
  chroma = new ChromaClient({ host: url.hostname, port: Number(url.port), ssl: false });
});
afterAll(async () => {
  await askq?.stop();
});

const sentences = (topic: string, n: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Fact ${i} about ${topic}: the ${topic} detail number ${i} matters for ${topic} work.`,
  ).join(' ');

/** The chunks Chroma really holds for a document (not what askq says it holds). */
async function chunksInChroma(collection: string, documentId: string): Promise<string[]> {
  const col = await chroma.getCollection({ name: `${askq.prefix}.default.${collection}` });
  const got = await col.get({ where: { documentId }, include: ['documents'] });
  return got.ids.sort();
}

async function collections(app: TestAskq = askq): Promise<CollectionView[]> {
  const body = (await (await fetch(`${app.url}/v1/collections`)).json()) as {
    collections: CollectionView[];
  };
  return body.collections;
}

async function ask(question: string, collection: string): Promise<QuestionView['result']> {
  const { events } = await askq.ask(question, { collection });
  const received = await followEvents(events);
  const last = received.at(-1)!;
  if (last.event !== 'completed') throw new Error(`question ended with ${JSON.stringify(last)}`);
  return (last.data as { result: QuestionView['result'] }).result;
}

describe('ingesting documents', () => {
  it('accepts documents with 202 and a Location, reports progress, and retrieval finds them', async () => {
    const res = await askq.post('/v1/documents', {
      collection: 'zoo',
      documents: [
        {
          id: 'penguins',
          title: 'Penguins',
          text: 'Penguins are flightless seabirds of the southern hemisphere. Emperor penguins huddle through the Antarctic winter.',
        },
        {
          id: 'camels',
          title: 'Camels',
          text: 'Camels store fat in their humps and cross deserts for days without water.',
          metadata: { habitat: 'desert', legs: 4, domestic: true },
        },
        {
          text: 'Owls hunt at night; their silent feathers and keen hearing find mice in the dark.',
        },
      ],
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { ingestionId: string; documents: number };
    expect(body.documents).toBe(3);
    expect(res.headers.get('location')).toBe(`/v1/ingestions/${body.ingestionId}`);

    const view = await waitForIngestion(askq.url, body.ingestionId);
    expect(view).toMatchObject({ status: 'completed', operation: 'upsert', collection: 'zoo' });
    expect(view.chunksTotal).toBeGreaterThanOrEqual(3);
    expect(view.chunksDone).toBe(view.chunksTotal);
    expect(view.documents.map((d) => d.id).slice(0, 2)).toEqual(['penguins', 'camels']);
    // A document without an id was given one, returned in the ingestion.
    expect(view.documents[2]!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(view.documents.every((d) => d.chunks >= 1 && d.error === undefined)).toBe(true);

    const result = await ask('Which birds huddle through the Antarctic winter?', 'zoo');
    expect(result!.sources[0]).toMatchObject({
      documentId: 'penguins',
      chunkId: 'penguins#0',
      title: 'Penguins',
    });
    expect(result!.sources[0]!.score).toBeGreaterThan(result!.sources.at(-1)!.score);
    expect(result!.sources.length).toBeLessThanOrEqual(4);
    const topTwo = await ask('How long can camels go without water?', 'zoo');
    expect(topTwo!.sources[0]!.documentId).toBe('camels');

    const [zoo] = (await collections()).filter((c) => c.name === 'zoo');
    expect(zoo).toEqual({
      name: 'zoo',
      documents: 3,
      chunks: view.chunksTotal,
      version: 3,
      embedder: 'hash',
      dimension: 2048,
    });
  });

  it('honours topK', async () => {
    const docs = Array.from({ length: 8 }, (_, i) => ({
      id: `d${i}`,
      text: `Note ${i} on gardening: water tomatoes at dawn, variant ${i}.`,
    }));
    await askq.seed(docs, 'garden');
    const { events } = await askq.ask('When should tomatoes be watered?', {
      collection: 'garden',
      topK: 6,
    });
    const received = await followEvents(events);
    const sources = received.find((e) => e.event === 'sources')!.data as { sources: unknown[] };
    expect(sources.sources).toHaveLength(6);
  });

  it('re-ingesting a document replaces exactly its chunks, and bumps the version', async () => {
    const long = await askq.seed(
      [
        { id: 'alpha', text: sentences('glassblowing', 30) },
        { id: 'beta', text: 'Beta stays as it is.' },
      ],
      'replace',
    );
    const before = long.documents.find((d) => d.id === 'alpha')!.chunks;
    expect(before).toBeGreaterThan(2);
    expect(await chunksInChroma('replace', 'alpha')).toHaveLength(before);
    const v1 = (await collections()).find((c) => c.name === 'replace')!.version;

    await askq.seed(
      [{ id: 'alpha', text: 'Alpha is now about beekeeping and honey harvests.' }],
      'replace',
    );
    expect(await chunksInChroma('replace', 'alpha')).toEqual(['alpha#0']);
    expect(await chunksInChroma('replace', 'beta')).toEqual(['beta#0']);
    const after = (await collections()).find((c) => c.name === 'replace')!;
    expect(after).toMatchObject({ documents: 2, chunks: 2, version: v1 + 1 });

    const result = await ask('Tell me about glassblowing detail', 'replace');
    expect(result!.sources.map((s) => s.text).join(' ')).not.toContain('glassblowing');
  });

  it('deleting a document removes all its chunks; deleting it again or an unknown one is 404', async () => {
    await askq.seed(
      [
        { id: 'gone', text: sentences('pottery', 20) },
        { id: 'kept', text: 'Kept text about weaving.' },
      ],
      'trash',
    );
    expect((await chunksInChroma('trash', 'gone')).length).toBeGreaterThan(1);
    const v1 = (await collections()).find((c) => c.name === 'trash')!.version;

    const res = await fetch(`${askq.url}/v1/documents/gone?collection=trash`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    const { ingestionId } = (await res.json()) as { ingestionId: string };
    const view = await waitForIngestion(askq.url, ingestionId);
    expect(view).toMatchObject({
      status: 'completed',
      operation: 'delete',
      documents: [{ id: 'gone' }],
    });
    expect(view.documents[0]!.chunks).toBeGreaterThan(1);

    expect(await chunksInChroma('trash', 'gone')).toEqual([]);
    expect(await chunksInChroma('trash', 'kept')).toEqual(['kept#0']);
    expect((await collections()).find((c) => c.name === 'trash')).toMatchObject({
      documents: 1,
      chunks: 1,
      version: v1 + 1,
    });

    expect(
      (await fetch(`${askq.url}/v1/documents/gone?collection=trash`, { method: 'DELETE' })).status,
    ).toBe(404);
    expect(
      (await fetch(`${askq.url}/v1/documents/never?collection=trash`, { method: 'DELETE' })).status,
    ).toBe(404);
    expect(
      (await fetch(`${askq.url}/v1/documents/kept?collection=elsewhere`, { method: 'DELETE' }))
        .status,
    ).toBe(404);
  });

  it('answers "no sources" for an empty collection instead of failing', async () => {
    const result = await ask('Is anything here?', 'nothing-yet');
    expect(result!.sources).toEqual([]);
    expect(result!.answer).toMatch(/no sources/i);
  });
});

describe('bad document requests', () => {
  async function expectInvalid(body: unknown, path: string) {
    const res = await askq.post('/v1/documents', body);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as {
      error: { code: string; details: Array<{ path: string }> };
    };
    expect(error.code).toBe('INVALID_REQUEST');
    expect(error.details.map((d) => d.path)).toContain(path);
  }

  it('gives 400 with the field path for each malformed document', async () => {
    await expectInvalid({}, 'documents');
    await expectInvalid({ documents: [] }, 'documents');
    await expectInvalid({ documents: [{ text: '   ' }] }, 'documents.0.text');
    await expectInvalid({ documents: [{ text: 'ok' }, { title: 'no text' }] }, 'documents.1.text');
    await expectInvalid(
      { documents: [{ text: 'ok', metadata: { nested: { a: 1 } } }] },
      'documents.0.metadata.nested',
    );
    await expectInvalid(
      { documents: [{ text: 'ok', metadata: { documentId: 'x' } }] },
      'documents.0.metadata',
    );
    await expectInvalid({ documents: [{ text: 'ok', colour: 'red' }] }, 'documents.0');
    await expectInvalid({ documents: [{ id: 'has space', text: 'ok' }] }, 'documents.0.id');
    await expectInvalid({ documents: [{ id: 'a#1', text: 'ok' }] }, 'documents.0.id');
    await expectInvalid(
      {
        documents: [
          { id: 'same', text: 'a' },
          { id: 'same', text: 'b' },
        ],
      },
      'documents.1.id',
    );
    await expectInvalid({ collection: 'no/slashes', documents: [{ text: 'ok' }] }, 'collection');
    await expectInvalid(
      { documents: Array.from({ length: 101 }, () => ({ text: 'x' })) },
      'documents',
    );
  });

  it('gives 413 above 1 MiB, and accepts a body just under it', async () => {
    const big = await askq.post('/v1/documents', {
      documents: [{ text: 'x'.repeat(1024 * 1024 + 10) }],
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe(
      'PAYLOAD_TOO_LARGE',
    );
    const fits = await askq.post('/v1/documents', {
      collection: 'big',
      documents: [{ id: 'big', text: 'word '.repeat(200_000) }],
    });
    expect(fits.status).toBe(202);
    const { ingestionId } = (await fits.json()) as { ingestionId: string };
    expect((await waitForIngestion(askq.url, ingestionId)).status).toBe('completed');
  });

  it('gives 404 for an unknown ingestion, 415 for a non-JSON body', async () => {
    expect(
      (await fetch(`${askq.url}/v1/ingestions/00000000-0000-4000-8000-000000000000`)).status,
    ).toBe(404);
    const res = await fetch(`${askq.url}/v1/documents`, {
      method: 'POST',
      headers: { 'content-type': 'text/markdown' },
      body: '# Doc',
    });
    expect(res.status).toBe(415);
  });
});

describe('embedders', () => {
  let llm: FakeLlm;
  beforeAll(async () => {
    llm = await createFakeLlm();
  });
  afterAll(async () => {
    await llm?.close();
  });

  it('uses an OpenAI-compatible embeddings server for ingestion and retrieval, batched', async () => {
    const remote = await startAskq({
      env: {
        EMBEDDINGS_BASE_URL: llm.baseURL,
        EMBEDDINGS_MODEL: 'test-embed',
        EMBEDDINGS_BATCH_SIZE: '2',
      },
    });
    try {
      const seen = llm.requests.length;
      const docs = Array.from({ length: 5 }, (_, i) => ({
        id: `r${i}`,
        text: `Remote document ${i}.`,
      }));
      const view = await remote.seed(docs, 'remote');
      expect(view.status).toBe('completed');
      const calls = llm.requests.slice(seen).filter((r) => r.path === '/v1/embeddings');
      // One chunk per document, the documents embedded together: two texts per request.
      expect(calls.map((c) => (c.body as { input: string[] }).input.length)).toEqual([2, 2, 1]);
      expect((calls[0]!.body as { model: string }).model).toBe('test-embed');
      const listed = (
        (await (await fetch(`${remote.url}/v1/collections`)).json()) as {
          collections: CollectionView[];
        }
      ).collections;
      expect(listed).toEqual([
        {
          name: 'remote',
          documents: 5,
          chunks: 5,
          version: 5,
          embedder: 'openai:test-embed',
          dimension: 8,
        },
      ]);

      const before = llm.requests.length;
      const { events } = await remote.ask('Remote document 3?', { collection: 'remote' });
      const received = await followEvents(events);
      expect(received.at(-1)!.event).toBe('completed');
      const questionCalls = llm.requests.slice(before).filter((r) => r.path === '/v1/embeddings');
      expect(questionCalls.map((c) => (c.body as { input: string[] }).input)).toEqual([
        ['Remote document 3?'],
      ]);

      // Retrieval is hybrid with these embeddings too: a word only one chunk holds finds it,
      // however little its (8-dimension) vector says. The vectors alone rank it anywhere.
      await remote.seed(
        [
          { id: 'z', text: 'Zanzibar exports cloves.' },
          { id: 'b', text: 'Basalt cools quickly.' },
          { id: 'm', text: 'Moss grows north.' },
          { id: 'k', text: 'Kites need wind.' },
        ],
        'words',
      );
      const found = await followEvents(
        (await remote.ask('zanzibar', { collection: 'words', topK: 2 })).events,
      );
      const { sources } = found.find((e) => e.event === 'sources')!.data as { sources: Source[] };
      expect(sources.map((s) => s.documentId)).toContain('z');
    } finally {
      await remote.stop();
    }
  });

  it('sends texts in batches of EMBEDDINGS_BATCH_SIZE', async () => {
    const remote = await startAskq({
      env: {
        EMBEDDINGS_BASE_URL: llm.baseURL,
        EMBEDDINGS_BATCH_SIZE: '2',
        CHUNK_SIZE: '120',
        CHUNK_OVERLAP: '0',
      },
    });
    try {
      const seen = llm.requests.length;
      const view = await remote.seed([{ id: 'long', text: sentences('knitting', 10) }], 'batched');
      const chunks = view.documents[0]!.chunks;
      expect(chunks).toBeGreaterThan(4);
      const sizes = llm.requests
        .slice(seen)
        .filter((r) => r.path === '/v1/embeddings')
        .map((c) => (c.body as { input: string[] }).input.length);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(chunks);
      expect(Math.max(...sizes)).toBe(2);
    } finally {
      await remote.stop();
    }
  });

  it('reports a document the embeddings server rejects, and ingests the others', async () => {
    const remote = await startAskq({
      env: { EMBEDDINGS_BASE_URL: llm.baseURL, EMBEDDINGS_MAX_RETRIES: '0' },
    });
    llm.embeddingsStatus((req) => (JSON.stringify(req.body).includes('POISON') ? 400 : 200));
    try {
      const view = await remote.seed(
        [
          { id: 'good', text: 'A fine text.' },
          { id: 'bad', text: 'POISON text.' },
          { id: 'also-good', text: 'Another fine text.' },
        ],
        'partial',
      );
      expect(view.status).toBe('completed');
      expect(view.documents.find((d) => d.id === 'bad')!.error).toMatch(/400/);
      expect(view.documents.filter((d) => d.error === undefined).map((d) => d.id)).toEqual([
        'good',
        'also-good',
      ]);
      expect(view.chunksDone).toBe(2);
    } finally {
      llm.embeddingsStatus(() => 200);
      await remote.stop();
    }
  });

  it('refuses to mix embedders in a collection: 409 at the API, a failed ingestion at the worker', async () => {
    // The collection is built by the hash embedder at its default dimension.
    await askq.seed([{ id: 'h', text: 'Built with the hash embedder.' }], 'mixed');

    // An API configured for another embedder refuses at once.
    const openaiApi = await startAskq({
      prefix: askq.prefix,
      worker: false,
      env: { EMBEDDINGS_BASE_URL: llm.baseURL },
    });
    try {
      const res = await openaiApi.post('/v1/documents', {
        collection: 'mixed',
        documents: [{ text: 'x' }],
      });
      expect(res.status).toBe(409);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('CONFLICT');
      expect(error.message).toMatch(/hash/);
    } finally {
      await openaiApi.stop();
    }

    // A worker with the same embedder name but another dimension fails the ingestion clearly.
    const other = await startAskq({ env: { HASH_EMBEDDER_DIMENSION: '256' } });
    try {
      await other.seed([{ id: 'first', text: 'Dimension 256 here.' }], 'dims');
      const again = await startAskq({
        prefix: other.prefix,
        env: { HASH_EMBEDDER_DIMENSION: '128' },
      });
      await other.stop();
      try {
        const view: IngestionView = await again.seed(
          [{ id: 'second', text: 'Dimension 128 here.' }],
          'dims',
        );
        expect(view.status).toBe('failed');
        expect(view.error?.code).toBe('EMBEDDER_MISMATCH');
        expect(view.error?.message).toMatch(/256/);
        // Asking with the mismatched embedder fails clearly too, instead of returning noise.
        const { events } = await again.ask('Anything?', { collection: 'dims' });
        const received = await followEvents(events);
        expect(received.at(-1)!.event).toBe('failed');
        expect((received.at(-1)!.data as { error: { code: string } }).error.code).toBe(
          'EMBEDDER_MISMATCH',
        );
      } finally {
        await again.stop();
      }
    } finally {
      await other.stop();
    }
  });
});
