import { describe, expect, it } from 'vitest';
import { fuseScores } from './hybrid-store.js';

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
