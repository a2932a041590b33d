import { describe, expect, it } from 'vitest';
import { cacheHash, normalizeQuestion } from './cache.js';

describe('normalizeQuestion', () => {
  it('ignores case, width, spacing and surrounding punctuation, and keeps the rest', () => {
    expect(normalizeQuestion('  ¿What is  ＡＳＫＱ?!  ')).toBe('what is askq');
    expect(normalizeQuestion('Is 0.92 the "threshold"?')).toBe('is 0.92 the "threshold');
    expect(normalizeQuestion('…')).toBe('');
    expect(normalizeQuestion('a…b')).toBe('a...b');
  });

  it('normalizes a 4,000-character question of punctuation in linear time', () => {
    // An inner run of punctuation: /[\s\p{P}]+$/ rescanned it from each of its 12,000 dots.
    const started = performance.now();
    for (const question of ['x' + '…'.repeat(3_998) + 'x', '…'.repeat(4_000), ' .'.repeat(2_000)]) {
      normalizeQuestion(question);
      cacheHash({ tenant: 't', collection: 'c', question, model: 'auto', topK: 4 });
    }
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
