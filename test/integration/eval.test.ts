import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLabelledFile, type LabelledQuestion } from '../../scripts/lib/eval/labelled.js';
import { formatTable } from '../../scripts/lib/eval/report.js';
import { runEval, type EvalSummary } from '../../scripts/lib/eval/run.js';
import { ingest, loadDocuments, type Doc } from '../../scripts/lib/ingest-files.js';
import { startAskq, type TestAskq } from '../support/askq.js';

// `askq eval` on the shipped quality fixtures, against a real askq (Redis, Chroma, API, worker):
// the runner in this process, then the CLI as a child process. The floors sit well below the
// figures measured, so only a real regression fails; the table is printed for CI's log.
const root = join(import.meta.dirname, '../..');
const fixtures = join(root, 'test/fixtures/quality');
const corpusDir = join(fixtures, 'corpus');

let askq: TestAskq;
let docs: Doc[];
let questions: LabelledQuestion[];
let dir: string;

beforeAll(async () => {
  // Every question is a new one (cache off): more than the default 120 a minute for one tenant.
  askq = await startAskq({ env: { RATE_LIMIT_PER_MINUTE: '100000' } });
  dir = await mkdtemp(join(tmpdir(), 'askq-eval-'));
  ({ docs } = await loadDocuments([corpusDir]));
  questions = await loadLabelledFile(join(fixtures, 'questions.json'));
  // Through the API, with the ids `askq ingest <folder>` gives: the runner's BM25 corpus is the
  // very same list.
  const ingested = await ingest({ url: askq.url, collection: 'quality', docs });
  expect(ingested.failed).toEqual([]);
  expect(ingested.ingested).toHaveLength(docs.length);
});
afterAll(async () => {
  await askq?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const isRate = (x: unknown) => typeof x === 'number' && x >= 0 && x <= 1;

describe('the eval runner on the shipped fixtures', () => {
  let summary: EvalSummary;

  beforeAll(async () => {
    summary = await runEval({ url: askq.url, collection: 'quality', questions, corpus: docs });
    console.log(`askq eval, shipped fixtures:\n${formatTable(summary)}`);
  }, 120_000);

  it('sums up every question, askq beside BM25', () => {
    expect(summary.questions).toBe(questions.length);
    expect(summary.perQuestion).toHaveLength(questions.length);
    expect(summary.topK).toBe(4);
    expect(summary.collection).toMatchObject({ name: 'quality', documents: docs.length });
    for (const key of ['recallAt1', 'recallAt4', 'mrr', 'validationRate'] as const) {
      expect(isRate(summary.askq[key]), key).toBe(true);
    }
    for (const key of ['recallAt1', 'recallAt4', 'mrr'] as const) {
      expect(isRate(summary.bm25?.[key]), key).toBe(true);
    }
    // The fact rate is over the questions that have a fact: "n/a" while none has one.
    if (questions.some((q) => q.fact !== undefined))
      expect(isRate(summary.askq.factRate)).toBe(true);
    else expect(summary.askq.factRate).toBeNull();
    expect(summary.askq.unanswered).toBe(0);
    expect(summary.notInCorpus).toBeUndefined();
    summary.perQuestion.forEach((p, i) => {
      expect(p.question).toBe(questions[i]!.question);
      expect(p.askq.status).toBe('completed');
      expect(new Set(p.askq.documents).size).toBe(p.askq.documents.length);
      expect(p.askq.rank).toBe(p.askq.documents.indexOf(p.documentId) + 1);
      expect(p.bm25!.documents.length).toBeLessThanOrEqual(4);
    });
    const missed = summary.perQuestion.filter((p) => p.askq.rank === 0 || p.askq.rank > 4);
    expect(summary.misses.filter((m) => m.system === 'askq')).toHaveLength(missed.length);
  });

  it('stays above the floors', () => {
    expect(summary.askq.recallAt4).toBeGreaterThanOrEqual(0.75);
    expect(summary.askq.mrr).toBeGreaterThanOrEqual(0.6);
    expect(summary.bm25!.recallAt4).toBeGreaterThanOrEqual(0.8);
    expect(summary.askq.validationRate).toBeGreaterThanOrEqual(0.5);
  });
});

describe('the eval runner on the sample corpus and its labelled set', () => {
  it('answers every question and stays above its floors', async () => {
    const sample = await loadDocuments([join(root, 'corpus/sample')]);
    const ingested = await ingest({ url: askq.url, collection: 'sample', docs: sample.docs });
    expect(ingested.failed).toEqual([]);
    const labelled = await loadLabelledFile(join(root, 'test/fixtures/sample-questions.json'));
    // Every labelled document is one of the corpus's, by the id `askq ingest` gives it.
    const ids = new Set(sample.docs.map((d) => d.id));
    expect(labelled.filter((q) => !ids.has(q.documentId))).toEqual([]);
    const result = await runEval({
      url: askq.url,
      collection: 'sample',
      questions: labelled,
      corpus: sample.docs,
    });
    console.log(`askq eval, sample corpus:\n${formatTable(result)}`);
    expect(result.askq.unanswered).toBe(0);
    expect(result.notInCorpus).toBeUndefined();
    expect(result.askq.recallAt4).toBeGreaterThanOrEqual(0.7);
    expect(result.askq.mrr).toBeGreaterThanOrEqual(0.5);
    expect(result.askq.validationRate).toBeGreaterThanOrEqual(0.5);
  }, 120_000);
});

describe('askq eval, the command', () => {
  function run(args: string[]) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/askq/main.ts', 'eval', ...args],
      {
        cwd: root,
        env: { ...process.env, ASKQ_URL: askq.url, ASKQ_API_KEY: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  }

  it('evaluates a labelled file of 3 questions and writes the JSON summary to stdout', async () => {
    const file = join(dir, 'three.jsonl');
    const three = questions.slice(0, 3);
    await writeFile(file, three.map((q) => JSON.stringify(q)).join('\n'));
    const { code, stdout, stderr } = await run([
      '--file',
      file,
      '--corpus',
      corpusDir,
      '--collection',
      'quality',
      '--concurrency',
      '2',
      '--json',
      '-',
    ]);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as EvalSummary;
    expect(Object.keys(summary)).toEqual(
      expect.arrayContaining(['questions', 'askq', 'bm25', 'misses', 'perQuestion']),
    );
    expect(summary.questions).toBe(3);
    expect(summary.perQuestion.map((p) => p.question)).toEqual(three.map((q) => q.question));
    expect(Object.keys(summary.askq)).toEqual(
      expect.arrayContaining(['recallAt1', 'recallAt4', 'mrr', 'factRate', 'validationRate']),
    );
    expect(Object.keys(summary.bm25!).sort()).toEqual(['mrr', 'recallAt1', 'recallAt4']);
    expect(summary.perQuestion.every((p) => p.askq.status === 'completed')).toBe(true);
    // The table goes to stderr when the JSON has stdout.
    expect(stderr).toMatch(/^askq {2}\d\.\d{3} /m);
    expect(stderr).toMatch(/^BM25 {2}\d\.\d{3} /m);
  }, 60_000);

  it('refuses a bad labelled file, naming the entry, with exit code 2', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(
      file,
      JSON.stringify([{ question: 'fine?', documentId: 'a' }, { question: 'no id?' }]),
    );
    const { code, stderr } = await run(['--file', file, '--collection', 'quality']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/bad\.json: index 1: "documentId"/);
  }, 60_000);

  it('exits 2 naming the collection when it does not exist', async () => {
    const file = join(dir, 'one.json');
    await writeFile(file, JSON.stringify(questions.slice(0, 1)));
    const { code, stderr } = await run(['--file', file, '--collection', 'nothing-here']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/collection "nothing-here" .* does not exist/);
  }, 60_000);
});
