import { describe, expect, it } from 'vitest';
import { AppError } from '@askq/shared';
import { createBackoff } from './backoff.js';

describe('createBackoff', () => {
  const options = { baseMs: 1_000, maxMs: 30_000, jitter: 0.5 };

  it('doubles per attempt, with jitter taking off at most its share', () => {
    const none = createBackoff(options, () => 0);
    const most = createBackoff(options, () => 1);
    expect([1, 2, 3, 4].map((n) => none(n))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect([1, 2, 3, 4].map((n) => most(n))).toEqual([500, 1_000, 2_000, 4_000]);
  });

  it('never exceeds maxMs', () => {
    expect(createBackoff(options, () => 0)(20)).toBe(30_000);
  });

  it("honours the server's Retry-After, capped at maxMs", () => {
    const backoff = createBackoff(options, () => 0);
    const limited = new AppError('LLM_UNAVAILABLE', '429', {
      retryable: true,
      retryAfterSeconds: 7,
    });
    expect(backoff(1, 'llm', limited)).toBe(7_000);
    const huge = new AppError('LLM_UNAVAILABLE', '429', {
      retryable: true,
      retryAfterSeconds: 3_600,
    });
    expect(backoff(1, 'llm', huge)).toBe(30_000);
    expect(backoff(2, 'llm', new Error('plain'))).toBe(2_000);
  });
});
