import { describe, expect, it } from 'vitest';
import {
  answerHasFact,
  documentRanking,
  normalizeForMatch,
  rankOf,
  retrievalScores,
  share,
} from './metrics.js';

const sources = (...ids: string[]) => ids.map((documentId) => ({ documentId }));

describe('documentRanking and rankOf', () => {
  it('counts several chunks of one document once, at its first chunk', () => {
    const ranking = documentRanking(sources('tides', 'tides', 'glaciers', 'tides', 'jazz'));
    expect(ranking).toEqual(['tides', 'glaciers', 'jazz']);
    expect(rankOf(ranking, 'tides')).toBe(1);
    expect(rankOf(ranking, 'glaciers')).toBe(2);
    expect(rankOf(ranking, 'jazz')).toBe(3);
    expect(rankOf(ranking, 'volcanoes')).toBe(0);
    expect(rankOf(documentRanking([]), 'tides')).toBe(0);
  });
});

describe('retrievalScores', () => {
  it('gives recall@1, recall@4 and MRR of hand-made ranks exactly', () => {
    // ranks 1, 2, 4, 5 (beyond the top 4) and absent
    const scores = retrievalScores([1, 2, 4, 5, 0]);
    expect(scores.recallAt1).toBe(1 / 5);
    expect(scores.recallAt4).toBe(3 / 5);
    expect(scores.mrr).toBeCloseTo((1 + 1 / 2 + 1 / 4 + 1 / 5 + 0) / 5, 12);
  });

  it('is 1 everywhere when every expected document ranks first, 0 when none is found', () => {
    expect(retrievalScores([1, 1, 1])).toEqual({ recallAt1: 1, recallAt4: 1, mrr: 1 });
    expect(retrievalScores([0, 0])).toEqual({ recallAt1: 0, recallAt4: 0, mrr: 0 });
    expect(retrievalScores([])).toEqual({ recallAt1: 0, recallAt4: 0, mrr: 0 });
  });

  it('ranks a document by its first chunk when computed from sources', () => {
    // The expected document's second chunk is first, but it counts at rank 2 (after "a").
    const ranks = [
      rankOf(documentRanking(sources('a', 'b', 'b', 'c')), 'b'),
      rankOf(documentRanking(sources('a', 'a', 'a', 'b')), 'b'),
      rankOf(documentRanking(sources('x', 'x', 'x', 'x')), 'b'),
    ];
    expect(ranks).toEqual([2, 2, 0]);
    expect(retrievalScores(ranks)).toEqual({ recallAt1: 0, recallAt4: 2 / 3, mrr: 1 / 3 });
  });
});

describe('answerHasFact', () => {
  const answer =
    'Neap tides have the SMALLEST\n  range [1], because the Sun and\tMoon pull at right angles. [2]';

  it('compares case-insensitively with whitespace collapsed', () => {
    expect(answerHasFact(answer, 'smallest range')).toBe(true);
    expect(answerHasFact(answer, 'Sun and Moon  pull')).toBe(true);
    expect(answerHasFact(answer, 'largest range')).toBe(false);
  });

  it('ignores citation marks inside the answer', () => {
    expect(answerHasFact('It takes 5 to 7 days [3] to be ready.', '7 days to be ready')).toBe(true);
  });

  it('accepts any one of several facts', () => {
    expect(answerHasFact(answer, ['largest range', 'right angles'])).toBe(true);
    expect(answerHasFact(answer, ['largest range', 'full moon'])).toBe(false);
  });

  it('never matches an empty fact', () => {
    expect(answerHasFact(answer, '   ')).toBe(false);
    expect(normalizeForMatch('  A\n\nB [12] ')).toBe('a b');
  });
});

describe('share', () => {
  it('is null over nothing', () => {
    expect(share(0, 0)).toBeNull();
    expect(share(1, 4)).toBe(0.25);
  });
});
