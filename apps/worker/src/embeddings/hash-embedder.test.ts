import { describe, expect, it } from 'vitest';
import { createHashEmbedder, hash32 } from './hash-embedder.js';

const cosine = (a: number[], b: number[]): number => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const norm = (v: number[]): number => Math.sqrt(cosine(v, v));

describe('hash32', () => {
  it('is a fixed function of the text, so stored vectors stay valid across deploys', () => {
    // Pinned (and checked against an independent FNV-1a + fmix32): a changed hash would silently
    // invalidate every collection built with it.
    expect(hash32('')).toBe(2872998923);
    expect(hash32('u:redis')).toBe(4164731862);
    expect(hash32('a')).not.toBe(hash32('b'));
  });
});

describe('createHashEmbedder', () => {
  const embedder = createHashEmbedder();

  it('is named hash with 2048 dimensions by default and honours another dimension', async () => {
    expect(embedder.name).toBe('hash');
    expect(embedder.dimension).toBe(2048);
    const small = createHashEmbedder({ dimension: 64 });
    const [vector] = await small.embed(['redis queue']);
    expect(small.dimension).toBe(64);
    expect(vector).toHaveLength(64);
  });

  it('rejects a dimension that is not a positive integer', () => {
    expect(() => createHashEmbedder({ dimension: 0 })).toThrow(RangeError);
    expect(() => createHashEmbedder({ dimension: 1.5 })).toThrow(RangeError);
  });

  it('is deterministic, including across embedder instances', async () => {
    const text = 'How does the exact cache key its answers?';
    const [a] = await embedder.embed([text]);
    const [b] = await createHashEmbedder().embed([text]);
    expect(a).toEqual(b);
  });

  it('returns one unit vector per text, in order', async () => {
    const vectors = await embedder.embed(['redis', 'chroma stores vectors', 'redis']);
    expect(vectors).toHaveLength(3);
    for (const v of vectors) expect(norm(v)).toBeCloseTo(1, 10);
    expect(vectors[0]).toEqual(vectors[2]);
    expect(vectors[0]).not.toEqual(vectors[1]);
  });

  it('gives related texts a higher cosine than unrelated ones', async () => {
    const [question, related, unrelated] = await embedder.embed([
      'How long are cached answers kept?',
      'Cached answers are kept for CACHE_TTL_SECONDS, 900 seconds by default.',
      'The worker metrics port serves Prometheus scrapes and health checks.',
    ]);
    expect(cosine(question!, related!)).toBeGreaterThan(0.2);
    expect(cosine(question!, related!)).toBeGreaterThan(cosine(question!, unrelated!) + 0.2);
  });

  it('rewards word order through bigrams', async () => {
    const [query, same, swapped] = await embedder.embed([
      'event stream',
      'event stream resume',
      'stream event resume',
    ]);
    expect(cosine(query!, same!)).toBeGreaterThan(cosine(query!, swapped!));
  });

  it('gives the zero vector for text without content words', async () => {
    const vectors = await embedder.embed(['', 'the of and', '?!']);
    for (const v of vectors) {
      expect(v).toHaveLength(2048);
      expect(v.every((x) => x === 0)).toBe(true);
    }
  });

  it('rejects when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(embedder.embed(['x'], controller.signal)).rejects.toThrow('stop');
  });
});
