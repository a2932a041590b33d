import { describe, expect, it } from 'vitest';
import type { CollectionView, QuestionResult } from '@askq/shared';
import { EvalAbortedError, runEval } from './run.js';

// runEval against a fake askq (an injected fetch): its HTTP calls, the event stream, the figures.
const COLLECTION: CollectionView = {
  name: 'default',
  documents: 3,
  chunks: 5,
  version: 3,
  embedder: 'hash',
  dimension: 2048,
};

interface Planned {
  /** Document ids of the sources, in order (chunks of one document may repeat). */
  sources: string[];
  answer?: string;
  passed?: boolean;
  /** The question fails instead of completing. */
  fail?: boolean;
}

function fakeAskq(
  plan: Record<string, Planned>,
  options: { collections?: CollectionView[]; gate?: number; status?: number } = {},
) {
  const bodies: Array<Record<string, unknown>> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let finished = 0;
  const waiting: Array<() => void> = [];
  const total = Object.keys(plan).length;
  // Streams wait until `gate` questions are in flight (or all that are left), so the test sees
  // the bound reached, without timers.
  const release = () => {
    if (inFlight >= Math.min(options.gate ?? 1, total - finished))
      waiting.splice(0).forEach((w) => w());
  };
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  // runEval calls fetch with a URL string and a JSON string body.
  const fetch = async (input: string, init?: { method?: string; body?: string }) => {
    const url = new URL(input);
    if (url.pathname === '/v1/collections') {
      return json(200, { collections: options.collections ?? [COLLECTION] });
    }
    if (url.pathname === '/v1/questions' && init?.method === 'POST') {
      if (options.status) return json(options.status, { error: { code: 'NOPE', message: 'no' } });
      const body = JSON.parse(init.body ?? '') as Record<string, unknown>;
      bodies.push(body);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const id = encodeURIComponent(String(body.question));
      return json(202, { id, status: 'queued', links: { events: `/v1/questions/${id}/events` } });
    }
    const question = decodeURIComponent(url.pathname.split('/')[3]!);
    const planned = plan[question]!;
    await new Promise<void>((done) => {
      waiting.push(done);
      release();
    });
    const sources = planned.sources.map((documentId, i) => ({
      documentId,
      chunkId: `${documentId}#${i}`,
      text: 'text',
      score: 1 - i / 10,
    }));
    const result = {
      answer: planned.answer ?? 'an answer',
      sources,
      model: 'extractive',
      route: 'fast',
      cached: false,
      usage: { promptTokens: 1, completionTokens: 1 },
      timings: { queueMs: 0, retrievalMs: 0, generationMs: 0, validationMs: 0, totalMs: 0 },
      validation: { passed: planned.passed ?? true, checks: [] },
    } satisfies QuestionResult;
    const events: Array<[string, unknown]> = [
      ['sources', { sources }],
      planned.fail
        ? ['failed', { error: { code: 'LLM_UNAVAILABLE', message: 'down' } }]
        : ['completed', { result }],
    ];
    inFlight--;
    finished++;
    release();
    const text = events
      .map(
        ([event, data], i) => `id: ${i + 1}-0\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
      )
      .join('');
    return new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  return {
    fetch: fetch as unknown as typeof globalThis.fetch,
    bodies,
    maxInFlight: () => maxInFlight,
  };
}

describe('runEval', () => {
  it('asks each question with cache off and top-k 4, and sums up askq and BM25', async () => {
    const askq = fakeAskq({
      'q1?': { sources: ['a', 'a', 'b'], answer: 'The Smallest\nRange [1].' },
      'q2?': { sources: ['c', 'b', 'b', 'b'], passed: false },
      'q3?': { sources: ['c'], fail: true },
    });
    const summary = await runEval({
      url: 'http://askq.test/',
      fetch: askq.fetch,
      questions: [
        { question: 'q1?', documentId: 'a', fact: 'smallest range' },
        { question: 'q2?', documentId: 'b', fact: ['nowhere'] },
        { question: 'q3?', documentId: 'c' },
      ],
      corpus: [
        { id: 'a', title: 'Alpha', text: 'q1 alpha words' },
        { id: 'b', title: 'Beta', text: 'q2 beta words' },
      ],
    });
    expect(askq.bodies).toEqual([
      { question: 'q1?', topK: 4, cache: false },
      { question: 'q2?', topK: 4, cache: false },
      { question: 'q3?', topK: 4, cache: false },
    ]);
    expect(summary.questions).toBe(3);
    expect(summary.collection).toEqual(COLLECTION);
    // Ranks 1, 2 and (failed, its sources still count) 1.
    expect(summary.askq).toEqual({
      recallAt1: 2 / 3,
      recallAt4: 1,
      mrr: (1 + 1 / 2 + 1) / 3,
      factRate: 1 / 2,
      validationRate: 1 / 3,
      unanswered: 1,
    });
    // BM25 finds q1 and q2 first; "c" is not in the corpus at all.
    expect(summary.bm25).toEqual({ recallAt1: 2 / 3, recallAt4: 2 / 3, mrr: 2 / 3 });
    expect(summary.notInCorpus).toEqual(['c']);
    expect(summary.misses).toEqual([
      { system: 'bm25', question: 'q3?', documentId: 'c', found: [] },
    ]);
    expect(summary.perQuestion[1]).toMatchObject({
      question: 'q2?',
      askq: { status: 'completed', rank: 2, documents: ['c', 'b'], factFound: false },
      bm25: { rank: 1, documents: ['b'] },
    });
    expect(summary.perQuestion[2]!.askq).toMatchObject({
      status: 'failed',
      error: 'LLM_UNAVAILABLE: down',
      factFound: null,
      validationPassed: false,
    });
  });

  it('keeps at most `concurrency` questions in flight', async () => {
    const plan = Object.fromEntries(
      Array.from({ length: 7 }, (_, i) => [`q${i}?`, { sources: ['a'] }]),
    );
    const askq = fakeAskq(plan, { gate: 3 });
    const done: number[] = [];
    const summary = await runEval({
      url: 'http://askq.test',
      fetch: askq.fetch,
      concurrency: 3,
      topK: 2,
      collection: 'default',
      questions: Object.keys(plan).map((question) => ({ question, documentId: 'a' })),
      onProgress: (n) => done.push(n),
    });
    expect(askq.maxInFlight()).toBe(3);
    expect(done).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(askq.bodies[0]).toEqual({
      question: 'q0?',
      topK: 2,
      cache: false,
      collection: 'default',
    });
    expect(summary.bm25).toBeUndefined();
    expect(summary.askq.factRate).toBeNull();
    expect(summary.askq.recallAt1).toBe(1);
  });

  it('stops before asking when the collection is missing or empty', async () => {
    const questions = [{ question: 'q?', documentId: 'a' }];
    const missing = fakeAskq({ 'q?': { sources: [] } }, { collections: [] });
    await expect(
      runEval({ url: 'http://askq.test', fetch: missing.fetch, questions, collection: 'docs' }),
    ).rejects.toThrow(/collection "docs" at http:\/\/askq\.test does not exist/);
    const empty = fakeAskq(
      { 'q?': { sources: [] } },
      { collections: [{ ...COLLECTION, documents: 0 }] },
    );
    await expect(
      runEval({ url: 'http://askq.test', fetch: empty.fetch, questions }),
    ).rejects.toThrow(/"default" .* is empty/);
    expect(missing.bodies).toEqual([]);
  });

  it('counts a refused question as unanswered and goes on', async () => {
    const refused = fakeAskq({ 'q?': { sources: [] } }, { status: 400 });
    const summary = await runEval({
      url: 'http://askq.test',
      fetch: refused.fetch,
      questions: [{ question: 'q?', documentId: 'a', fact: 'x' }],
    });
    expect(summary.askq).toMatchObject({
      recallAt4: 0,
      factRate: 0,
      validationRate: 0,
      unanswered: 1,
    });
    expect(summary.perQuestion[0]!.askq).toMatchObject({
      status: 'error',
      error: 'POST /v1/questions: 400 NOPE: no',
      documents: [],
    });
    expect(summary.misses).toEqual([
      { system: 'askq', question: 'q?', documentId: 'a', found: [] },
    ]);
  });

  it('ends the run when the key is refused, and says when askq cannot be reached', async () => {
    const refused = fakeAskq({ 'q?': { sources: [] } }, { status: 401 });
    const err = await runEval({
      url: 'http://askq.test',
      fetch: refused.fetch,
      questions: [{ question: 'q?', documentId: 'a' }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvalAbortedError);
    expect(err).toMatchObject({ reason: 'unauthorized', message: /401 NOPE: no/ });

    const down = (() =>
      Promise.reject(
        new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }),
      )) as typeof fetch;
    await expect(
      runEval({
        url: 'http://askq.test',
        fetch: down,
        questions: [{ question: 'q?', documentId: 'a' }],
      }),
    ).rejects.toMatchObject({ reason: 'unreachable', message: /ECONNREFUSED/ });
  });
});
