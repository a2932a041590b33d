import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  batchDocuments,
  collectFiles,
  ingest,
  IngestAbortedError,
  levelOneHeading,
  loadDocuments,
  readDocument,
  type Doc,
  type IngestProgress,
} from './ingest-files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'askq-ingest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(path: string, content: string | Uint8Array): Promise<string> {
  const file = join(dir, path);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, content);
  return file;
}

describe('collectFiles', () => {
  it('walks folders, keeps .md/.txt in order and says what it skipped', async () => {
    const root = join(dir, 'walk');
    await put('walk/b.md', '# B');
    await put('walk/A.TXT', 'a');
    await put('walk/sub/c.Md', 'c');
    await put('walk/logo.png', 'png');
    await put('walk/.git/notes.md', 'not a document');
    await put('walk/node_modules/pkg/README.md', 'not a document');
    const single = await put('single.txt', 'one');

    const { files, skipped, roots } = await collectFiles([
      root,
      single,
      join(dir, 'missing.md'),
      join(root, 'b.md'), // already reached through its folder
    ]);

    expect(files).toEqual([
      join(dir, 'single.txt'),
      join(root, 'A.TXT'),
      join(root, 'b.md'),
      join(root, 'sub/c.Md'),
    ]);
    expect(roots.get(join(root, 'sub/c.Md'))).toBe(root);
    expect(roots.get(single)).toBe(dir);
    expect(skipped).toEqual([
      { path: join(dir, 'missing.md'), reason: 'not found' },
      { path: join(root, '.git'), reason: expect.stringContaining('not searched') },
      { path: join(root, 'logo.png'), reason: 'not a .md or .txt file' },
      { path: join(root, 'node_modules'), reason: expect.stringContaining('not searched') },
    ]);
  });
});

describe('readDocument', () => {
  it('derives the id from the path under the root and the title from the first heading', async () => {
    const file = await put(
      'read/guides/getting started #1.md',
      '```sh\n# not a title\n```\n\n# Getting started #\n\nText.\n',
    );
    const { doc, problem } = await readDocument(file, join(dir, 'read'));
    expect(problem).toBeUndefined();
    expect(doc).toEqual({
      id: 'guides/getting-started--1',
      title: 'Getting started',
      text: '```sh\n# not a title\n```\n\n# Getting started #\n\nText.\n',
    });
  });

  it('falls back to the file name for the title of plain text', async () => {
    const file = await put('read/notes.txt', '# just text\n');
    expect((await readDocument(file, join(dir, 'read'))).doc).toMatchObject({
      id: 'notes',
      title: 'notes',
    });
  });

  it('reports empty, oversized and non-UTF-8 files', async () => {
    const empty = await put('bad/empty.md', ' \n\t\n');
    const big = await put('bad/big.txt', 'x'.repeat(1024 * 1024 + 1));
    const latin1 = await put('bad/latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
    const quotes = await put('bad/quotes.txt', '"'.repeat(600 * 1024));
    const root = join(dir, 'bad');
    expect(await readDocument(empty, root)).toEqual({ problem: 'empty' });
    expect((await readDocument(big, root)).problem).toMatch(/larger than 1 MiB/);
    expect((await readDocument(latin1, root)).problem).toMatch(/UTF-8/);
    // Every quote doubles when JSON-encoded: under 1 MiB on disk, over it in a request.
    expect((await readDocument(quotes, root)).problem).toMatch(/too big/);
  });
});

describe('loadDocuments', () => {
  it('reads documents as `askq ingest` sends them, leaving out unusable files and twin ids', async () => {
    const root = join(dir, 'load');
    await put('load/guides/Set up#1.md', '# Setting up\n\nRun it.');
    await put('load/notes.txt', 'Plain notes.');
    await put('load/notes.md', '# Notes again');
    await put('load/empty.md', '  \n');
    await put('load/logo.png', 'png');

    const loaded = await loadDocuments([root], (path) => `<${path.slice(root.length + 1)}>`);

    // Ids are paths under the folder named, without the extension; whitespace and # become -.
    expect(loaded.docs).toEqual([
      { id: 'guides/Set-up-1', title: 'Setting up', text: '# Setting up\n\nRun it.' },
      { id: 'notes', title: 'Notes again', text: '# Notes again' },
    ]);
    expect(loaded.fileOf.get('notes')).toBe(join(root, 'notes.md'));
    expect(loaded.bad).toEqual([
      { path: join(root, 'empty.md'), reason: 'empty' },
      { path: join(root, 'notes.txt'), reason: 'same id "notes" as <notes.md>' },
    ]);
    expect(loaded.skipped).toEqual([
      { path: join(root, 'logo.png'), reason: 'not a .md or .txt file' },
    ]);
    expect(loaded.files).toHaveLength(4);
  });
});

describe('levelOneHeading', () => {
  it('reads ATX level-1 headings the way Markdown does', () => {
    expect(levelOneHeading('# Title')).toBe('Title');
    expect(levelOneHeading('   # Title ##  ')).toBe('Title');
    expect(levelOneHeading('# C#')).toBe('C#');
    expect(levelOneHeading('# ###')).toBeUndefined();
    expect(levelOneHeading('    # code, not a heading')).toBeUndefined();
    expect(levelOneHeading('#Title')).toBeUndefined();
    expect(levelOneHeading('## Second level')).toBeUndefined();
  });

  it('reads a heading with a long run of spaces in linear time', () => {
    const started = performance.now();
    expect(levelOneHeading(`# a${' '.repeat(1_000_000)}#y`)).toBe(`a${' '.repeat(1_000_000)}#y`);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

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

describe('what the ingester refuses to read', () => {
  it('skips links out of the folder, FIFOs and devices, and binary files, each with a reason', async () => {
    const folder = join(dir, 'hostile');
    await put('hostile/ok.md', '# Fine\n\nA document.');
    await put('hostile/image.md', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0d]));
    await put('outside/secret.md', 'Not for the collection.');
    await symlink(join(dir, 'outside/secret.md'), join(folder, 'leak.md'));
    await symlink('/dev/zero', join(folder, 'zero.md'));
    await symlink(join(folder, 'ok.md'), join(folder, 'alias.md'));
    execFileSync('mkfifo', [join(folder, 'pipe.md')]);

    const { docs, skipped, bad } = await loadDocuments([folder]);
    expect(docs.map((d) => d.id).sort()).toEqual(['alias', 'ok']);
    const why = Object.fromEntries(
      [...skipped, ...bad].map((s) => [s.path.slice(folder.length + 1), s.reason]),
    );
    expect(why).toEqual({
      'leak.md': 'symbolic link out of the folder (not followed)',
      'zero.md': 'symbolic link out of the folder (not followed)',
      'pipe.md': 'not a regular file',
      'image.md': 'binary (holds NUL bytes)',
    });
  });

  it('checks the opened file, not the path: a FIFO or a device named directly is not read', async () => {
    const fifo = join(dir, 'direct.fifo.md');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO for reading would wait for a writer; this must answer at once.
    expect(await readDocument(fifo, dir)).toEqual({ problem: 'not a regular file' });
    expect(await readDocument('/dev/zero', '/dev')).toEqual({ problem: 'not a regular file' });
  });

  it('reads no more than 1 MiB and a byte of any file', async () => {
    await put('big.md', 'x'.repeat(1024 * 1024 + 10));
    expect(await readDocument(join(dir, 'big.md'), dir)).toEqual({
      problem: 'larger than 1 MiB (too big for one request)',
    });
  });
});
