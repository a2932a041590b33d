import { describe, expect, it } from 'vitest';
import { questionSignals, sameSignals } from './signals.js';

describe('questionSignals', () => {
  it('finds numbers written as digits or words', () => {
    expect(
      questionSignals('Revenue in 2023 for the top three plans, 1,000 users, 2.5%?').numbers,
    ).toEqual(['1000', '2.5', '2023', '3'].sort());
  });

  it("finds negations, including the n't forms", () => {
    expect(questionSignals("Which plans don't include backups?").negations).toEqual(['not']);
    expect(questionSignals('Which plans never include backups and not support?').negations).toEqual(
      ['not', 'not'],
    );
    expect(questionSignals('Which plans include backups?').negations).toEqual([]);
  });
});

describe('sameSignals', () => {
  it('accepts rewordings with the same numbers and negations', () => {
    expect(sameSignals('What is the cause of tides?', 'what causes tides')).toBe(true);
    expect(sameSignals('Sales in 2024?', 'How much did we sell in 2024')).toBe(true);
    expect(sameSignals('Why is it not blue?', "Why isn't it blue?")).toBe(true);
  });

  it('refuses a different number or a negation', () => {
    expect(sameSignals('Sales in 2023?', 'Sales in 2024?')).toBe(false);
    expect(sameSignals('Which plans include backups?', 'Which plans do not include backups?')).toBe(
      false,
    );
    expect(sameSignals('top three plans', 'top 4 plans')).toBe(false);
  });
});
