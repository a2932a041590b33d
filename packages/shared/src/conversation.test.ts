import { describe, expect, it } from 'vitest';
import { boundHistory, contextOf, type Turn } from './conversation.js';

const user = (content: string): Turn => ({ role: 'user', content });
const assistant = (content: string): Turn => ({ role: 'assistant', content });
const limits = { turns: 10, chars: 10_000 };

describe('boundHistory', () => {
  it('keeps the most recent turns, oldest first, within the turn limit', () => {
    const turns = [user('a'), assistant('b'), user('c'), assistant('d'), user('e'), assistant('f')];
    expect(boundHistory(turns, { turns: 4, chars: 100 })).toEqual(turns.slice(2));
  });

  it('cuts the oldest kept turn from its start to fit the characters, and drops older ones', () => {
    const kept = boundHistory([user('x'.repeat(50)), user('0123456789'), assistant('abcdefghij')], {
      turns: 10,
      chars: 15,
    });
    // 10 characters of the answer, the last 5 of the question before it; the first is gone.
    expect(kept).toEqual([user('56789'), assistant('abcdefghij')]);
  });

  it('removes earlier answers’ citation marks, which named other sources', () => {
    expect(boundHistory([user('q'), assistant('Yes [1]. And no [2][3].')], limits)).toEqual([
      user('q'),
      assistant('Yes. And no.'),
    ]);
  });

  it('alternates the roles, starting with the user’s, as strict chat templates require', () => {
    const turns = [
      assistant('Hello! How can I help?'),
      user('About ferries.'),
      user('The Mull one.'),
      assistant(''),
      assistant('It sails from Oban.'),
      user('And tickets?'),
    ];
    expect(boundHistory(turns, limits)).toEqual([
      user('About ferries.\n\nThe Mull one.'),
      assistant('It sails from Oban.'),
      user('And tickets?'),
    ]);
  });

  it('is linear: a long conversation of long turns is bounded quickly', () => {
    const turns = Array.from({ length: 10_000 }, (_, i) =>
      i % 2 ? assistant('word [1] '.repeat(200)) : user('word '.repeat(200)),
    );
    const started = performance.now();
    const kept = boundHistory(turns, { turns: 10, chars: 8_000 });
    // A generous bound on a pathological input: what matters is that it does not explode.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(kept.reduce((n, t) => n + t.content.length, 0)).toBeLessThanOrEqual(8_000);
  });
});

describe('contextOf', () => {
  it('is empty for a question that stands alone', () => {
    expect(contextOf(undefined)).toBe('');
    expect(contextOf([])).toBe('');
  });

  it('tells conversations apart, even when their text joins the same way', () => {
    const mull = contextOf([user('Tell me about the ferry to Mull.')]);
    const skye = contextOf([user('Tell me about the ferry to Skye.')]);
    expect(mull).not.toBe(skye);
    expect(contextOf([user('ab'), assistant('c')])).not.toBe(
      contextOf([user('a'), assistant('bc')]),
    );
    expect(contextOf([user('Tell me about the ferry to Mull.')])).toBe(mull);
  });
});
