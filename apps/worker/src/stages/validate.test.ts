import type { Source } from '@askq/shared';
import { describe, expect, it } from 'vitest';
import { citedNumbers, validateAnswer } from './validate.js';

const sources: Source[] = [
  {
    documentId: 'a',
    chunkId: 'a1',
    text: 'Answers are cached for 900 seconds by default.',
    score: 0.9,
  },
  {
    documentId: 'b',
    chunkId: 'b1',
    text: 'Only answers that passed validation are stored.',
    score: 0.7,
  },
];

const validate = (answer: string, over: Partial<Parameters<typeof validateAnswer>[0]> = {}) =>
  validateAnswer({ answer, sources, maxAnswerChars: 200, groundingThreshold: 0.5, ...over });

const check = (answer: string, name: string, over = {}) =>
  validate(answer, over).checks.find((c) => c.name === name);

describe('validateAnswer', () => {
  it('passes a grounded, cited answer and runs the checks in order', () => {
    const result = validate(
      'Answers are cached for 900 seconds [1], if they passed validation [2].',
    );
    expect(result.passed).toBe(true);
    expect(result.checks.map((c) => c.name)).toEqual([
      'non_empty',
      'length',
      'citations',
      'grounding',
    ]);
    expect(result.checks.every((c) => c.passed)).toBe(true);
  });

  it('fails non_empty for blank answers', () => {
    expect(check('  \n ', 'non_empty')).toMatchObject({ passed: false });
    expect(check('x', 'non_empty')).toMatchObject({ passed: true });
    expect(validate(' ').passed).toBe(false);
  });

  it('checks length against maxAnswerChars, inclusive, and reports it', () => {
    expect(check('Answers are cached.', 'length', { maxAnswerChars: 19 })).toEqual({
      name: 'length',
      passed: true,
      detail: '19 <= 19 chars',
    });
    expect(check('Answers are cached.', 'length', { maxAnswerChars: 18 })).toEqual({
      name: 'length',
      passed: false,
      detail: '19 > 18 chars',
    });
    expect(validate('Answers are cached [1].', { maxAnswerChars: 5 }).passed).toBe(false);
  });

  it('accepts citations of existing sources in every form', () => {
    for (const answer of [
      'Cached [1].',
      'Cached [1, 2].',
      'Cached [1][2].',
      'Cached [1-2].',
      'Cached.',
    ]) {
      expect(check(answer, 'citations')).toMatchObject({ passed: true });
    }
    expect(check('Cached [2][1] [2].', 'citations')?.detail).toBe('cites [1, 2]');
  });

  it('fails citations of sources that do not exist and names them', () => {
    expect(check('Cached [3] and stored [0], again [1, 7].', 'citations')).toEqual({
      name: 'citations',
      passed: false,
      detail: 'unknown sources [0, 3, 7] of 2',
    });
    expect(check('Cached [2-3].', 'citations')).toMatchObject({ passed: false });
  });

  it('fails grounding when the answer talks about things the sources do not mention', () => {
    const result = validate('Kubernetes autoscaling rebalances pods across regions [1].');
    expect(result.passed).toBe(false);
    expect(result.checks.find((c) => c.name === 'grounding')).toEqual({
      name: 'grounding',
      passed: false,
      detail: 'score 0.00 < 0.5',
    });
  });

  it('scores grounding as the share of content words found, ignoring citation markers', () => {
    // Content words: answer, cached, 900, second, kubernete -> 4 of 5 found (plurals folded).
    expect(
      check('The answer is cached for 900 second in Kubernetes [1] [2].', 'grounding'),
    ).toEqual({
      name: 'grounding',
      passed: true,
      detail: 'score 0.80 >= 0.5',
    });
    expect(
      check('Cached in Kubernetes on Mars by robots [1]', 'grounding', { groundingThreshold: 0.5 }),
    ).toEqual({
      name: 'grounding',
      passed: false,
      detail: 'score 0.25 < 0.5',
    });
  });

  it('without sources, passes grounding only for an answer that cites nothing', () => {
    const none = { sources: [] };
    expect(check('The sources do not contain an answer.', 'grounding', none)).toEqual({
      name: 'grounding',
      passed: true,
      detail: 'no sources',
    });
    expect(check('Cached for 900 seconds [1].', 'grounding', none)).toEqual({
      name: 'grounding',
      passed: false,
      detail: 'no sources',
    });
    expect(validate('Cached [1].', none).passed).toBe(false);
  });
});

describe('citedNumbers', () => {
  it('reads single, grouped, adjacent and ranged markers and ignores other brackets', () => {
    expect(citedNumbers('a [1] b [2, 3][4] c [5-7] d [x] e [ 8 ]')).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8,
    ]);
  });
});

describe('declining to answer', () => {
  const sources = [
    { documentId: 'd', chunkId: 'd#0', text: 'Basalt lava is runny and flows far.', score: 0.4 },
  ];
  const check = (answer: string) =>
    validateAnswer({ answer, sources, maxAnswerChars: 8000, groundingThreshold: 0.5 }).checks.find(
      (c) => c.name === 'grounding',
    );

  it('passes grounding for a short, uncited statement that the sources hold no answer', () => {
    expect(check('The sources do not contain an answer to this question.')?.passed).toBe(true);
    expect(check("The provided documents don't mention the capital of France.")?.passed).toBe(true);
  });

  it('does not let a refusal carry ungrounded claims or citations', () => {
    expect(
      check(
        'The sources do not mention it. However, Paris is the capital of France, famous for the Eiffel Tower, croissants, museums, fashion houses, and a long revolutionary history.',
      )?.passed,
    ).toBe(false);
    expect(check('The sources do not contain the answer [1].')?.detail).not.toMatch(/declined/);
  });
});

describe('each citation is checked against the source it cites', () => {
  it('flags a fact of [1] cited as [2], though the answer as a whole is grounded', () => {
    const result = validate('Answers are cached for 900 seconds by default [2].');
    expect(check('Answers are cached for 900 seconds by default [2].', 'grounding')?.passed).toBe(
      true,
    );
    const citations = result.checks.find((c) => c.name === 'citations')!;
    expect(citations.passed).toBe(false);
    expect(citations.detail).toContain('is not in [2]');
    expect(citations.detail).toContain('[1] would');
    expect(result.passed).toBe(false);
  });

  it('reads a claim as the text before its markers, whichever side of the full stop', () => {
    for (const answer of [
      'Answers are cached for 900 seconds [1]. Only answers that passed validation are stored [2].',
      'Answers are cached for 900 seconds. [1] Only answers that passed validation are stored. [2]',
      'Answers are cached for 900 seconds and only validated ones are stored [1][2].',
    ]) {
      expect(check(answer, 'citations')?.passed, answer).toBe(true);
    }
    const swapped =
      'Answers are cached for 900 seconds. [2] Only answers that passed validation are stored. [1]';
    expect(check(swapped, 'citations')?.passed).toBe(false);
  });
});

describe('a claim is the sentence before its marks', () => {
  it('does not charge an uncited sentence to the next mark, and counts a source’s title', () => {
    const tides: Source[] = [
      { documentId: 't', chunkId: 't#0', text: 'Spring tides come at full moon.', score: 1 },
      {
        documentId: 'n',
        chunkId: 'n#0',
        title: 'Neap tides',
        text: 'At the quarter moons.',
        score: 1,
      },
    ];
    const result = validateAnswer({
      answer:
        'Spring tides come at full moon [1]. Tides vary. Neap tides come at quarter moons [2].',
      sources: tides,
      maxAnswerChars: 500,
      groundingThreshold: 0.5,
    });
    expect(result.checks.find((c) => c.name === 'citations')).toMatchObject({ passed: true });
  });
});
