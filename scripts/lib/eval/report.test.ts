import { expect, it } from 'vitest';
import { formatTable } from './report.js';
import type { EvalSummary } from './run.js';

const base: EvalSummary = {
  questions: 2,
  collection: {
    name: 'docs',
    documents: 2,
    chunks: 3,
    version: 2,
    embedder: 'hash',
    dimension: 2048,
  },
  topK: 4,
  askq: {
    recallAt1: 0.5,
    recallAt4: 1,
    mrr: 0.75,
    factRate: null,
    validationRate: 1,
    unanswered: 0,
  },
  misses: [],
  perQuestion: [],
};

it('prints askq beside BM25, n/a for a fact rate without facts, and the misses', () => {
  const table = formatTable({
    ...base,
    bm25: { recallAt1: 0, recallAt4: 0.5, mrr: 0.25 },
    misses: [{ system: 'bm25', question: 'why?', documentId: 'b', found: ['a', 'c'] }],
  });
  expect(table).toContain('2 questions, collection "docs" (2 documents, 3 chunks, embedder hash');
  expect(table).toMatch(/^ +recall@1 {2}recall@4 {2}MRR +fact rate {2}validation rate$/m);
  expect(table).toMatch(/^askq {2}0\.500 {5}1\.000 {5}0\.750 {2}n\/a {8}1\.000$/m);
  expect(table).toMatch(/^BM25 {2}0\.000 {5}0\.500 {5}0\.250 {2}- +-$/m);
  expect(table).toContain('Misses, askq: none');
  expect(table).toContain(
    'Misses, BM25 (1): expected document not in the top 4\n  why? (b) -> a, c',
  );
});

it('says the baseline was left out without a corpus', () => {
  const table = formatTable(base);
  expect(table).not.toMatch(/^BM25 {2}/m);
  expect(table).toMatch(/BM25 baseline left out: give --corpus/);
  expect(table).not.toMatch(/Misses, BM25/);
});
