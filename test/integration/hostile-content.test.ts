import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { spawnWorker, type AppProcess } from '../support/processes.js';
import { followEvents } from '../support/sse-client.js';

// Content an attacker controls, at the largest size askq accepts, sent while ordinary questions
// run. Before text handling was made linear and moved off the event loop, the first of these
// documents froze a worker for hours (and its questions with it); here every one is ingested or
// refused with its code while the worker keeps answering /healthz and ordinary questions complete.
// The worker is a process of its own, as deployed, so its health is measured from outside.
let askq: TestAskq;
let worker: AppProcess;

const MIB = 1_048_576;
// The request's JSON around one document's text.
const ROOM = MIB - 512;

beforeAll(async () => {
  // Small vectors: what is tested is the text handling, not how fast Chroma stores 2,048 floats.
  const env = { HASH_EMBEDDER_DIMENSION: '64' };
  askq = await startAskq({ worker: false, env });
  worker = await spawnWorker({
    REDIS_URL: inject('redisUrl'),
    CHROMA_URL: inject('chromaUrl'),
    REDIS_PREFIX: askq.prefix,
    ...env,
  });
  const seeded = await askq.seed(
    [
      {
        id: 'tides',
        text: 'Tides are caused by the gravity of the moon and the sun pulling on the oceans. Spring tides happen at new and full moon.',
      },
    ],
    'ordinary',
  );
  expect(seeded.status).toBe('completed');
}, 120_000);

afterAll(async () => {
  await worker?.process.stop();
  await askq?.stop();
});

/** Polls the worker's /healthz every 100 ms while `during` runs; returns the slowest answer. */
async function healthWhile<T>(during: () => Promise<T>): Promise<{ value: T; slowestMs: number }> {
  let slowestMs = 0;
  let failures = 0;
  let done = false;
  const poll = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${worker.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
      if (!res.ok) failures++;
      slowestMs = Math.max(slowestMs, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    return { value: await during(), slowestMs };
  } finally {
    done = true;
    await poll;
    expect(failures).toBe(0);
  }
}

async function askOrdinary(): Promise<QuestionView['result']> {
  const { events } = await askq.ask('What causes tides?', { collection: 'ordinary', cache: false });
  const received = await followEvents(events);
  const last = received.at(-1)!;
  expect(last.event).toBe('completed');
  return (last.data as { result: QuestionView['result'] }).result;
}

const documents: Record<string, string> = {
  'a heading of one word and 900,000 spaces': `# a${' '.repeat(900_000)}#y`,
  '"Dr. " repeated': 'Dr. '.repeat(ROOM / 4),
  'capitalised abbreviations (quadratic in ICU)': 'Ab. '.repeat(ROOM / 4),
  'one word of a megabyte': 'w'.repeat(ROOM),
  'a flood of ellipses': '\u2026'.repeat(ROOM / 3),
  'a run of #': '#'.repeat(ROOM),
  'deep lists': `${'- '.repeat(500)}item\n`.repeat(Math.floor(ROOM / 1005)),
  'nested indentation': `${' '.repeat(1_000)}- x\n`.repeat(Math.floor(ROOM / 1004)),
  'one-letter sentences': 'a. '.repeat(ROOM / 3),
};

describe('hostile documents at the largest accepted size', () => {
  for (const [name, text] of Object.entries(documents)) {
    it(`ingests ${name} while the worker stays responsive`, async () => {
      const { value: view, slowestMs } = await healthWhile(async () => {
        const res = await askq.post('/v1/documents', {
          collection: 'hostile',
          documents: [{ id: 'doc', text }],
        });
        expect(res.status, await res.clone().text()).toBe(202);
        const { ingestionId } = (await res.json()) as { ingestionId: string };
        // An ordinary question asked meanwhile still completes.
        const [ingestion] = await Promise.all([
          waitForIngestion(askq.url, ingestionId),
          askOrdinary(),
        ]);
        return ingestion;
      });
      expect(view.status).toBe('completed');
      expect(view.documents[0]?.error).toBeUndefined();
      // Generous on purpose: a blocked loop (the old code) stalled it for minutes.
      expect(slowestMs).toBeLessThan(2_000);
      // The worker's own measure of its event loop, over the window that held this ingestion.
      const metrics = await (await fetch(`${worker.url}/metrics`)).text();
      const lag = Number(/^askq_event_loop_lag_seconds\{[^}]*\} (\S+)$/m.exec(metrics)?.[1]);
      expect(lag).toBeGreaterThan(0);
      expect(lag).toBeLessThan(1);
    }, 60_000);
  }

  it('did that work on the content threads, every task within its budget', async () => {
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(/askq_content_task_duration_seconds_count\{[^}]*task="chunk"/);
    expect(metrics).toMatch(/askq_content_task_duration_seconds_count\{[^}]*task="embedHash"/);
    expect(metrics).not.toMatch(/outcome="too_complex"[^\n]* [1-9]/);
  });

  it('refuses oversized metadata and too many metadata keys with their codes', async () => {
    const post = (documents: unknown[]) =>
      askq.post('/v1/documents', { collection: 'hostile', documents });
    const big = await post([{ text: 'x', metadata: { note: 'm'.repeat(200_000) } }]);
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({
      error: {
        code: 'PAYLOAD_TOO_LARGE',
        details: [{ path: 'documents.0.metadata', message: expect.stringMatching(/bytes/) }],
      },
    });
    const keys = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]));
    const many = await post([{ text: 'x', metadata: keys }]);
    expect(many.status).toBe(400);
    expect(await many.json()).toMatchObject({
      error: {
        code: 'INVALID_REQUEST',
        details: [{ path: 'documents.0.metadata', message: expect.stringMatching(/keys/) }],
      },
    });
  });
});

describe('hostile questions of 4,000 characters', () => {
  const questions: Record<string, string> = {
    'ellipses (12,000 dots once normalized)': '\u2026'.repeat(4_000),
    'an inner run of dots': `x${'.'.repeat(3_998)}x`,
    'blank lines before a word': `${'\n'.repeat(3_998)}a?`,
    'an endless enumeration': '(1) '.repeat(1_000),
    abbreviations: 'Dr. '.repeat(1_000),
    'citation brackets': '[1,'.repeat(1_333),
    'negations and numbers': 'not 1 '.repeat(666),
  };
  for (const [name, question] of Object.entries(questions)) {
    it(`answers or refuses ${name} without stalling the API`, async () => {
      const started = performance.now();
      const res = await askq.post('/v1/questions', {
        question,
        collection: 'ordinary',
        cache: false,
      });
      expect([202, 400]).toContain(res.status);
      const body = (await res.json()) as { links?: { events: string }; error?: { code: string } };
      if (res.status === 400) {
        expect(body.error?.code).toBe('INVALID_REQUEST');
      } else {
        const events = await followEvents(askq.url + body.links!.events);
        expect(events.at(-1)!.event, JSON.stringify(events.at(-1))).toBe('completed');
      }
      // The API answers a probe at once meanwhile, and took seconds at most.
      expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
      expect(performance.now() - started).toBeLessThan(10_000);
    }, 30_000);
  }
});
