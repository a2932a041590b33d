import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createHybridStore, fuseScores } from './hybrid-store.js';

describe('fuseScores', () => {
  it('orders by the weighted sum of each side’s scores over its best', () => {
    const fused = fuseScores([
      {
        scored: [
          { id: 'a', score: 0.9 },
          { id: 'b', score: 0.45 },
        ],
        weight: 0.5,
      },
      {
        scored: [
          { id: 'b', score: 8 },
          { id: 'c', score: 2 },
        ],
        weight: 0.5,
      },
    ]);
    // a: 0.5; b: 0.25 + 0.5; c: 0.125.
    expect(fused).toEqual(['b', 'a', 'c']);
  });

  it('keeps a near tie on one side from outweighing a clear win on the other (two candidates)', () => {
    // The vectors barely prefer "short"; the words clearly prefer "long".
    const fused = fuseScores([
      {
        scored: [
          { id: 'short', score: 0.3 },
          { id: 'long', score: 0.25 },
        ],
        weight: 0.5,
      },
      {
        scored: [
          { id: 'long', score: 0.9 },
          { id: 'short', score: 0.2 },
        ],
        weight: 0.5,
      },
    ]);
    expect(fused[0]).toBe('long');
  });

  it('counts a negative cosine as nothing, and leaves out a side of weight 0', () => {
    expect(
      fuseScores([
        { scored: [{ id: 'x', score: -0.2 }], weight: 0.5 },
        { scored: [{ id: 'y', score: 1 }], weight: 0.5 },
      ]),
    ).toEqual(['y', 'x']);
    expect(
      fuseScores([
        { scored: [{ id: 'x', score: 0.2 }], weight: 1 },
        { scored: [{ id: 'y', score: 1 }], weight: 0 },
      ]),
    ).toEqual(['x']);
  });
});

describe('createHybridStore', () => {
  const source = (chunkId: string, score: number) => ({
    documentId: chunkId.split('#')[0]!,
    chunkId,
    text: chunkId,
    score,
  });
  it('fills topK past chunks the lexical index still lists but the vector store no longer has', async () => {
    const store = createHybridStore({
      vectors: {
        query: () => Promise.resolve([source('a#0', 0.9), source('b#0', 0.8), source('c#0', 0.7)]),
        // gone#0 was deleted from Chroma; its postings are left.
        get: (_ref, ids) =>
          Promise.resolve(ids.filter((id) => id !== 'gone#0').map((id) => source(id, 0.1))),
        upsert: () => Promise.resolve(),
        deleteChunks: () => Promise.resolve(),
      },
      lexical: {
        search: () =>
          Promise.resolve([
            { chunkId: 'gone#0', score: 9 },
            { chunkId: 'a#0', score: 1 },
          ]),
        index: () => Promise.resolve(),
        deleteChunks: () => Promise.resolve(),
      },
      log: pino({ level: 'silent' }),
    });
    const sources = await store.query(
      { tenant: 't', collection: 'c' },
      { embedding: [1], terms: ['x'] },
      2,
    );
    expect(sources.map((s) => s.chunkId)).toEqual(['a#0', 'b#0']);
  });
});
