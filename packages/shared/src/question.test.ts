import { describe, expect, it } from 'vitest';
import { toQuestionView } from './question-record.js';
import { AskRequest, type QuestionResult } from './question.js';

describe('AskRequest', () => {
  it('applies the defaults and trims the question', () => {
    expect(AskRequest.parse({ question: '  What is askq?\n' })).toEqual({
      question: 'What is askq?',
      collection: 'default',
      model: 'auto',
      topK: 4,
      cache: true,
    });
  });

  it('keeps given values', () => {
    expect(
      AskRequest.parse({
        question: 'q',
        collection: 'my_docs-2',
        model: 'smart',
        topK: 20,
        cache: false,
      }),
    ).toEqual({ question: 'q', collection: 'my_docs-2', model: 'smart', topK: 20, cache: false });
  });

  it('rejects a missing, empty or blank question', () => {
    expect(AskRequest.safeParse({}).success).toBe(false);
    expect(AskRequest.safeParse({ question: '' }).success).toBe(false);
    const blank = AskRequest.safeParse({ question: ' \n\t ' });
    expect(blank.success).toBe(false);
    expect(blank.error?.issues[0]?.path).toEqual(['question']);
    expect(blank.error?.issues[0]?.message).toBe('must not be empty');
  });

  it('accepts exactly 4000 characters and rejects 4001', () => {
    expect(AskRequest.safeParse({ question: 'x'.repeat(4000) }).success).toBe(true);
    const tooLong = AskRequest.safeParse({ question: 'x'.repeat(4001) });
    expect(tooLong.success).toBe(false);
    expect(tooLong.error?.issues[0]?.message).toBe('at most 4000 characters');
  });

  it('measures the length after trimming', () => {
    expect(AskRequest.safeParse({ question: `  ${'x'.repeat(4000)}  ` }).success).toBe(true);
  });

  it('rejects unknown fields', () => {
    const result = AskRequest.safeParse({ question: 'q', temperature: 0.2 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.code).toBe('unrecognized_keys');
  });

  it('bounds topK to integers from 1 to 20', () => {
    for (const topK of [1, 7, 20]) {
      expect(AskRequest.safeParse({ question: 'q', topK }).success, String(topK)).toBe(true);
    }
    for (const topK of [0, -1, 21, 2.5, '4', null]) {
      expect(AskRequest.safeParse({ question: 'q', topK }).success, String(topK)).toBe(false);
    }
  });

  it('accepts only the known models and a boolean cache', () => {
    expect(AskRequest.safeParse({ question: 'q', model: 'fast' }).success).toBe(true);
    expect(AskRequest.safeParse({ question: 'q', model: 'gpt-4' }).success).toBe(false);
    expect(AskRequest.safeParse({ question: 'q', cache: 'false' }).success).toBe(false);
  });

  it('accepts safe collection names', () => {
    for (const collection of ['my_docs-2', 'a', 'A1', 'x'.repeat(64)]) {
      expect(AskRequest.safeParse({ question: 'q', collection }).success, collection).toBe(true);
    }
  });

  it('rejects collection names that are unsafe in a key or path', () => {
    const bad = ['../x', 'a.b', '-a', 'a-', '_a', '', 'a b', 'a/b', 'a:b', 'x'.repeat(65)];
    for (const collection of bad) {
      const result = AskRequest.safeParse({ question: 'q', collection });
      expect(result.success, collection).toBe(false);
      expect(result.error?.issues[0]?.path).toEqual(['collection']);
    }
  });
});

describe('toQuestionView', () => {
  const createdAt = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  const base = {
    tenant: 't',
    question: 'What is askq?',
    collection: 'docs',
    model: 'auto',
    topK: '4',
    cache: 'true',
    status: 'queued',
    createdAt: String(createdAt),
  };

  it('returns undefined for an empty hash (the question does not exist)', () => {
    expect(toQuestionView('q1', {})).toBeUndefined();
  });

  it('returns undefined when status or question is missing', () => {
    expect(toQuestionView('q1', { ...base, status: undefined })).toBeUndefined();
    expect(toQuestionView('q1', { ...base, question: '' })).toBeUndefined();
  });

  it('maps a queued record with ISO dates and zero attempts', () => {
    expect(toQuestionView('q1', base)).toEqual({
      id: 'q1',
      status: 'queued',
      question: 'What is askq?',
      collection: 'docs',
      createdAt: '2024-01-02T03:04:05.678Z',
      attempts: 0,
    });
  });

  it('maps a finished record, parsing the result JSON', () => {
    const result: QuestionResult = {
      answer: 'A queue [1].',
      sources: [{ documentId: 'd', chunkId: 'd1', text: 't', score: 0.5 }],
      model: 'extractive',
      route: 'fast',
      cached: false,
      usage: { promptTokens: 10, completionTokens: 3 },
      timings: { queueMs: 1, retrievalMs: 2, generationMs: 3, validationMs: 4, totalMs: 10 },
      validation: { passed: true, checks: [{ name: 'citations', passed: true }] },
    };
    const view = toQuestionView('q1', {
      ...base,
      status: 'completed',
      startedAt: String(createdAt + 1000),
      finishedAt: String(createdAt + 2500),
      stage: 'validation',
      attempts: '2',
      result: JSON.stringify(result),
    });
    expect(view).toEqual({
      id: 'q1',
      status: 'completed',
      question: 'What is askq?',
      collection: 'docs',
      createdAt: '2024-01-02T03:04:05.678Z',
      startedAt: '2024-01-02T03:04:06.678Z',
      finishedAt: '2024-01-02T03:04:08.178Z',
      stage: 'validation',
      attempts: 2,
      result,
    });
    expect(view).not.toHaveProperty('error');
  });

  it('parses the error JSON of a failed record', () => {
    const view = toQuestionView('q2', {
      ...base,
      status: 'failed',
      attempts: '3',
      error: JSON.stringify({ code: 'LLM_TIMEOUT', message: 'the model did not answer' }),
    });
    expect(view?.status).toBe('failed');
    expect(view?.attempts).toBe(3);
    expect(view?.error).toEqual({ code: 'LLM_TIMEOUT', message: 'the model did not answer' });
    expect(view).not.toHaveProperty('result');
    expect(view).not.toHaveProperty('startedAt');
  });
  it('leaves out a corrupt timestamp instead of throwing', () => {
    const view = toQuestionView('q', {
      status: 'queued',
      question: 'x',
      collection: 'c',
      createdAt: 'abc',
      startedAt: 'nope',
    });
    expect(view?.startedAt).toBeUndefined();
    expect(view?.createdAt).toBe('');
  });
});
