import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Doc } from './ingest-files.js';
import { batchDocuments, ingest, IngestAbortedError, type IngestProgress } from './ingest-send.js';

describe('batchDocuments', () => {
  const doc = (i: number, size = 10): Doc => ({
    id: `d${i}`,
    title: `D${i}`,
    text: 'x'.repeat(size),
  });
  const bodyBytes = (batch: Doc[], collection?: string) =>
    Buffer.byteLength(JSON.stringify({ collection, documents: batch }));

  it('keeps at most maxDocs per batch, in order', () => {
    const docs = Array.from({ length: 250 }, (_, i) => doc(i));
    const batches = batchDocuments(docs);
    expect(batches.map((b) => b.length)).toEqual([100, 100, 50]);
    expect(batches.flat()).toEqual(docs);
  });

  it('keeps every body within maxBytes, to the byte', () => {
    const docs = Array.from({ length: 40 }, (_, i) => doc(i, 37 * i));
    const maxBytes = 3000;
    const batches = batchDocuments(docs, { maxBytes, collection: 'kb' });
    expect(batches.flat()).toEqual(docs);
    for (const batch of batches) {
      expect(bodyBytes(batch, 'kb')).toBeLessThanOrEqual(maxBytes);
    }
    // Greedy: adding the next document to a batch would have crossed the limit.
    for (let i = 0; i + 1 < batches.length; i++) {
      expect(bodyBytes([...batches[i]!, batches[i + 1]![0]!], 'kb')).toBeGreaterThan(maxBytes);
    }
  });

  it('sends a document larger than maxBytes alone', () => {
    expect(batchDocuments([doc(1), doc(2, 500), doc(3)], { maxBytes: 200 })).toEqual([
      [doc(1)],
      [doc(2, 500)],
      [doc(3)],
    ]);
  });
});

/** A stand-in for the askq API: a queue of canned answers per route, and a log of requests. */
interface FakeApi {
  url: string;
  requests: Array<{ method: string; path: string; auth?: string; body?: unknown }>;
  answers: {
    post: Array<(body: { documents: Doc[] }) => Answer>;
    get: Array<() => Answer>;
  };
}
type Answer = { status: number; body: unknown; headers?: Record<string, string> };

let server: Server;
let api: FakeApi;
beforeAll(async () => {
  api = { url: '', requests: [], answers: { post: [], get: [] } };
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : undefined;
      api.requests.push({
        method: req.method!,
        path: req.url!,
        auth: req.headers.authorization,
        body,
      });
      const next =
        req.method === 'POST' && req.url === '/v1/documents'
          ? api.answers.post.shift()?.(body)
          : req.method === 'GET' && req.url?.startsWith('/v1/ingestions/')
            ? api.answers.get.shift()?.()
            : undefined;
      const answer = next ?? { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no' } } };
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterEach(() => {
  api.requests = [];
  api.answers = { post: [], get: [] };
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

describe('ingest', () => {
  const docs: Doc[] = [
    { id: 'a', title: 'A', text: 'alpha' },
    { id: 'b', title: 'B', text: 'beta' },
  ];
  const view = (status: string, chunksDone: number, documents: unknown[]) => ({
    id: 'ing-1',
    status,
    collection: 'kb',
    documents,
    chunksDone,
    chunksTotal: 3,
  });

  it('retries a 503, follows the ingestion and reports progress and per-document errors', async () => {
    api.answers.post.push(
      () => ({
        status: 503,
        headers: { 'retry-after': '0' },
        body: { error: { code: 'UNAVAILABLE', message: 'redis down' } },
      }),
      (body) => ({ status: 202, body: { ingestionId: 'ing-1', documents: body.documents.length } }),
    );
    api.answers.get.push(
      () => ({
        status: 200,
        body: view('active', 1, [
          { id: 'a', chunks: 2 },
          { id: 'b', chunks: 1 },
        ]),
      }),
      () => ({
        status: 200,
        body: view('completed', 3, [
          { id: 'a', chunks: 2 },
          { id: 'b', chunks: 0, error: 'embedder mismatch' },
        ]),
      }),
    );
    const progress: IngestProgress[] = [];

    const result = await ingest({
      url: api.url,
      apiKey: 'k1',
      collection: 'kb',
      docs,
      pollMs: 1,
      onProgress: (p) => progress.push(p),
    });

    expect(result).toEqual({
      ingested: [{ id: 'a', chunks: 2 }],
      failed: [{ id: 'b', error: 'embedder mismatch' }],
    });
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/documents',
      'POST /v1/documents',
      'GET /v1/ingestions/ing-1',
      'GET /v1/ingestions/ing-1',
    ]);
    expect(api.requests.every((r) => r.auth === 'Bearer k1')).toBe(true);
    expect(api.requests[1]!.body).toEqual({ collection: 'kb', documents: docs });
    expect(progress).toEqual([
      { chunksDone: 0, chunksTotal: 0, documentsDone: 0, documentsTotal: 2 },
      { chunksDone: 1, chunksTotal: 3, documentsDone: 0, documentsTotal: 2 },
      { chunksDone: 3, chunksTotal: 3, documentsDone: 2, documentsTotal: 2 },
    ]);
  });

  it('marks every document of a rejected batch failed, naming the bad fields', async () => {
    api.answers.post.push(() => ({
      status: 400,
      body: {
        error: {
          code: 'INVALID_REQUEST',
          message: 'invalid body',
          details: [{ path: 'documents.1.text', message: 'too short' }],
        },
      },
    }));

    const result = await ingest({ url: api.url, docs, pollMs: 1 });

    const error = 'INVALID_REQUEST: invalid body (documents.1.text: too short)';
    expect(result).toEqual({
      ingested: [],
      failed: [
        { id: 'a', error },
        { id: 'b', error },
      ],
    });
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]!.auth).toBeUndefined();
  });

  it('gives up on a batch after five retries', async () => {
    const busy = (): Answer => ({
      status: 429,
      headers: { 'retry-after': '0' },
      body: { error: { code: 'RATE_LIMITED', message: 'slow down' } },
    });
    api.answers.post.push(...Array.from({ length: 6 }, () => busy));

    const result = await ingest({ url: api.url, docs: docs.slice(0, 1), pollMs: 1 });

    expect(result.failed).toEqual([{ id: 'a', error: 'RATE_LIMITED: slow down' }]);
    expect(api.requests).toHaveLength(6);
  });

  it('stops at once when nothing answers at the URL', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));

    const attempt = ingest({ url: `http://127.0.0.1:${port}`, docs, pollMs: 1 });

    await expect(attempt).rejects.toBeInstanceOf(IngestAbortedError);
    await expect(attempt).rejects.toMatchObject({ reason: 'unreachable' });
  });
});
