import { ChromaClient } from 'chromadb';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { IngestionView, QuestionView } from '@askq/shared';
import type { RunningWorker } from '../../apps/worker/src/runtime.js';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// The hard limits of SPEC 7 on documents (chunks per document and per request, bounded Chroma
// writes) and the time budget of CPU-bound work on content, with limits set small so that
// ordinary test documents reach them.

async function ask(app: TestAskq, question: string, collection: string) {
  const { events } = await app.ask(question, { collection, cache: false });
  const received = await followEvents(events);
  return received.at(-1)!;
}

describe('chunk limits and bounded writes', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({
      env: {
        CHUNK_SIZE: '800',
        CHUNK_OVERLAP: '120',
        MAX_CHUNKS_PER_DOCUMENT: '10',
        MAX_CHUNKS_PER_REQUEST: '15',
        CHROMA_WRITE_BATCH: '2',
      },
    });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  // Sentences just over half a chunk: one a chunk, more chunks than characters / 680 suggests.
  const sentence = (i: number) => `Sentence ${i} ${'word '.repeat(88)}ends here.`;
  const text = (sentences: number) =>
    Array.from({ length: sentences }, (_, i) => sentence(i)).join(' ');

  it('refuses at the API a document that would make too many chunks, with 413 and its path', async () => {
    const res = await askq.post('/v1/documents', {
      collection: 'limits',
      documents: [
        { id: 'short', text: 'Fine.' },
        { id: 'long', text: 'x '.repeat(4_000) },
      ],
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({
      error: {
        code: 'PAYLOAD_TOO_LARGE',
        details: [
          {
            path: 'documents.1.text',
            message: expect.stringMatching(/MAX_CHUNKS_PER_DOCUMENT/),
          },
        ],
      },
    });
  });

  it('refuses a request whose documents make too many chunks together', async () => {
    const documents = Array.from({ length: 4 }, (_, i) => ({
      id: `d${i}`,
      text: 'y '.repeat(2_400),
    }));
    const res = await askq.post('/v1/documents', { collection: 'limits', documents });
    expect(res.status).toBe(413);
    const body = (await res.json()) as {
      error: { details: Array<{ path: string; message: string }> };
    };
    expect(body.error.details).toEqual([
      { path: 'documents', message: expect.stringMatching(/MAX_CHUNKS_PER_REQUEST/) },
    ]);
  });

  it('refuses at the worker a document the estimate let through but the chunker cuts finer', async () => {
    // 13 sentences of ~450 characters: the API estimates 9 chunks, the chunker makes 13.
    const res = await askq.post('/v1/documents', {
      collection: 'limits',
      documents: [
        { id: 'fine', text: text(3) },
        { id: 'fragmented', text: text(13) },
      ],
    });
    expect(res.status).toBe(202);
    const { ingestionId } = (await res.json()) as { ingestionId: string };
    const view = await waitForIngestion(askq.url, ingestionId);
    expect(view.status).toBe('completed');
    expect(view.documents).toEqual([
      { id: 'fine', chunks: 3 },
      { id: 'fragmented', chunks: 0, error: expect.stringMatching(/^TOO_MANY_CHUNKS: 13 chunks/) },
    ]);
  });

  it('writes a document of many chunks to Chroma in bounded batches, all of them', async () => {
    const view = await askq.seed([{ id: 'nine', text: text(9) }], 'batched');
    expect(view.documents).toEqual([{ id: 'nine', chunks: 9 }]);
    const url = new URL(inject('chromaUrl'));
    const chroma = new ChromaClient({ host: url.hostname, port: Number(url.port), ssl: false });
    const collection = await chroma.getCollection({ name: `${askq.prefix}.default.batched` });
    expect(await collection.count()).toBe(9);
    const last = await ask(askq, 'Which sentence is number 8?', 'batched');
    expect(last.event).toBe('completed');
  });
});

describe('the time budget of work on content', () => {
  let askq: TestAskq;
  let second: RunningWorker;
  const env = { CONTENT_TASK_BUDGET_MS: '50', HASH_EMBEDDER_DIMENSION: '64' };
  beforeAll(async () => {
    askq = await startAskq({ env, captureLogs: true });
    // A second worker on the same queues: a failed job must not be retried on it.
    second = await askq.addWorker();
    await askq.seed(
      [{ id: 'tides', text: 'The moon pulls the oceans and makes the tides.' }],
      'ok',
    );
  });
  afterAll(async () => {
    await second?.stop('test finished');
    await askq?.stop();
  });

  it('fails a job past its budget once with CONTENT_TOO_COMPLEX, not retried elsewhere', async () => {
    // About half a second of sentence splitting: ten times the budget.
    const heavy = 'Ab. '.repeat(200_000);
    const res = await askq.post('/v1/documents', {
      collection: 'heavy',
      documents: [
        { id: 'first', text: 'A small document, stored before the heavy one.' },
        { id: 'heavy', text: heavy },
        { id: 'after', text: 'Never reached.' },
      ],
    });
    expect(res.status).toBe(202);
    const { ingestionId } = (await res.json()) as { ingestionId: string };
    const view: IngestionView = await waitForIngestion(askq.url, ingestionId);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('CONTENT_TOO_COMPLEX');
    // All are chunked before any is stored: the heavy one's chunking failed, so none was stored.
    expect(view.documents).toEqual([
      { id: 'first', chunks: 0, error: expect.stringMatching(/not processed/) },
      { id: 'heavy', chunks: 0, error: expect.stringMatching(/^CONTENT_TOO_COMPLEX: .*50 ms/) },
      { id: 'after', chunks: 0, error: expect.stringMatching(/not processed/) },
    ]);
    expect(view.chunksDone).toBe(view.chunksTotal);

    // Quarantined: BullMQ holds the job as failed after one attempt; no worker took it again.
    const connection = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
    const queue = new Queue('ingest', { connection, prefix: `{${askq.prefix}}` });
    try {
      const job = await queue.getJob(ingestionId);
      expect(await job?.getState()).toBe('failed');
      expect(job?.attemptsStarted).toBe(1);
    } finally {
      await queue.close();
      connection.disconnect();
    }
    // Both workers log here: the job failed once, on one of them, and neither announced a retry.
    const failures = askq.logs.filter(
      (l) => l.msg === 'ingestion failed' && l.ingestionId === ingestionId,
    );
    expect(failures).toHaveLength(1);
    expect(askq.logs.filter((l) => l.msg === 'ingestion attempt failed; retrying')).toEqual([]);

    // The workers go on serving questions; nothing of the failed ingestion can be found.
    const last = await ask(askq, 'What makes the tides?', 'ok');
    expect(last.event).toBe('completed');
    expect((last.data as { result: QuestionView['result'] }).result!.answer).toMatch(/moon/);
    const none = await ask(askq, 'Which document was stored before the heavy one?', 'heavy');
    expect((none.data as { result: QuestionView['result'] }).result!.sources).toEqual([]);
  });
});
