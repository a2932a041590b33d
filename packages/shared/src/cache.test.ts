import { describe, expect, it } from 'vitest';
import { cacheHash, normalizeQuestion } from './cache.js';

describe('normalizeQuestion', () => {
  it('ignores case, width, spacing and surrounding punctuation, and keeps the rest', () => {
    expect(normalizeQuestion('  ¿What is  ＡＳＫＱ?!  ')).toBe('what is askq');
    expect(normalizeQuestion('Is 0.92 the "threshold"?')).toBe('is 0.92 the "threshold');
    expect(normalizeQuestion('…')).toBe('');
    expect(normalizeQuestion('a…b')).toBe('a...b');
  });

  it('normalizes a long inner run of punctuation in linear time', () => {
    // /[\s\p{P}]+$/ rescanned an inner run of dots from each of them: 230 ms for a 4,000-character
    // question of ellipses (12,000 dots), minutes for this one; linear, it takes milliseconds.
    const started = performance.now();
    const run = '…'.repeat(100_000);
    for (const question of [`x${run}x`, run, ' .'.repeat(150_000)]) {
      normalizeQuestion(question);
      cacheHash({ tenant: 't', collection: 'c', question, model: 'auto', topK: 4 });
    }
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
