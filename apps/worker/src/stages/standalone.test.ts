import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Turn } from '@askq/shared';
import type { ChatModel } from '../llm/chat-model.js';
import { carryKeyTerms, standaloneQuestion } from './standalone.js';

const log = pino({ level: 'silent' });
const history: Turn[] = [
  { role: 'user', content: 'Tell me about the ferry to Mull in 2024.' },
  { role: 'assistant', content: 'The Oban ferry to Mull sails to Craignure.' },
];
const model = (rewrite?: ChatModel['rewrite']): ChatModel => ({
  modelFor: () => 'm',
  stream: () => (async function* () {})(),
  ...(rewrite ? { rewrite } : {}),
});

describe('carryKeyTerms', () => {
  it('adds the earlier turns’ content words the follow-up lacks, user turns first', () => {
    expect(carryKeyTerms('How long does the crossing take?', history)).toBe(
      // Numbers belong to the earlier question; "ferry" and "mull" come from the user's turn.
      'How long does the crossing take? (tell ferry mull oban sails craignure)',
    );
  });

  it('leaves a question alone when the turns add nothing', () => {
    expect(carryKeyTerms('Mull ferry?', [{ role: 'user', content: 'the ferry to Mull' }])).toBe(
      'Mull ferry?',
    );
  });
});

describe('standaloneQuestion', () => {
  const signal = new AbortController().signal;

  it('is the question itself without a conversation', async () => {
    expect(await standaloneQuestion({ question: 'Q?' }, { model: model(), log }, signal)).toEqual({
      text: 'Q?',
      how: 'alone',
    });
  });

  it('takes the model’s rewrite, with what it cost', async () => {
    const usage = { promptTokens: 30, completionTokens: 9 };
    const rewrite = () => Promise.resolve({ text: ' How long is the Mull crossing? ', usage });
    expect(
      await standaloneQuestion(
        { question: 'How long?', history },
        { model: model(rewrite), log },
        signal,
      ),
    ).toEqual({ text: 'How long is the Mull crossing?', how: 'rewritten', usage });
  });

  it('carries key terms when the rewrite fails, is empty, or runs on', async () => {
    for (const rewrite of [
      () => Promise.reject(new Error('500')),
      () => Promise.resolve({ text: '  ', usage: { promptTokens: 1, completionTokens: 0 } }),
      () =>
        Promise.resolve({
          text: 'x'.repeat(5_000),
          usage: { promptTokens: 1, completionTokens: 1 },
        }),
    ]) {
      const got = await standaloneQuestion(
        { question: 'How long?', history },
        { model: model(rewrite), log },
        signal,
      );
      expect(got.how).toBe('lexical');
      expect(got.text).toContain('mull');
    }
  });

  it('does not swallow a cancel', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const rewrite = () => Promise.reject(new Error('aborted'));
    await expect(
      standaloneQuestion(
        { question: 'How long?', history },
        { model: model(rewrite), log },
        controller.signal,
      ),
    ).rejects.toThrow('cancelled');
  });
});
