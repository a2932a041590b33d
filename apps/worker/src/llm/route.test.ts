import type { Source } from '@askq/shared';
import { describe, expect, it } from 'vitest';
import { chooseRoute, defaultWeakScore } from './route.js';

const strong: Source[] = [
  { documentId: 'd', chunkId: 'c1', text: 'x', score: 0.2 },
  { documentId: 'd', chunkId: 'c2', text: 'y', score: 0.75 },
];
const auto = (question: string, sources = strong) =>
  chooseRoute({ question, requested: 'auto', sources });

describe('chooseRoute', () => {
  it('honours an explicit choice whatever the question', () => {
    expect(chooseRoute({ question: 'Compare A vs B?', requested: 'fast', sources: [] })).toEqual({
      route: 'fast',
      reason: 'requested',
    });
    expect(chooseRoute({ question: 'Hi?', requested: 'smart', sources: strong })).toEqual({
      route: 'smart',
      reason: 'requested',
    });
  });

  it('routes a short simple question with good retrieval to fast', () => {
    expect(auto('How long are cached answers kept?')).toEqual({ route: 'fast', reason: 'simple' });
  });

  it('routes long questions to smart', () => {
    expect(auto(`Explain this: ${'the worker retries jobs '.repeat(14)}`)).toEqual({
      route: 'smart',
      reason: 'long',
    });
    // The limit counts the question, not the whitespace around it.
    expect(auto(`   What is askq?${' '.repeat(400)}`).reason).toBe('simple');
  });

  it.each([
    'Compare the exact cache with the semantic cache',
    'What is the difference between fast and smart?',
    'Redis vs. Chroma for storing events?',
    'Is Ollama versus vLLM faster here?',
    'Is the hash embedder better than OpenAI embeddings?',
    'What are the pros and cons of more workers?',
    'How does the semantic cache differ from the exact cache?',
  ])('routes comparative questions to smart: %s', (question) => {
    expect(auto(question)).toEqual({ route: 'smart', reason: 'comparative' });
  });

  it.each([
    'What is askq? How do I run it?',
    'What is the default port and how do I change it?',
    'Explain:\n1. the queue\n2. the cache',
    'Tell me (1) the port (2) the log level',
  ])('routes multi-part questions to smart: %s', (question) => {
    expect(auto(question)).toEqual({ route: 'smart', reason: 'multi_part' });
  });

  it('does not mistake one ask with "and" for a multi-part question', () => {
    expect(auto('How do Redis and Chroma start?')).toEqual({ route: 'fast', reason: 'simple' });
  });

  it('routes weak or missing retrieval to smart', () => {
    const weak: Source[] = [{ documentId: 'd', chunkId: 'c', text: 'x', score: 0.29 }];
    expect(auto('How long are cached answers kept?', weak)).toEqual({
      route: 'smart',
      reason: 'weak_retrieval',
    });
    expect(auto('How long are cached answers kept?', [])).toEqual({
      route: 'smart',
      reason: 'weak_retrieval',
    });
    const enough: Source[] = [{ documentId: 'd', chunkId: 'c', text: 'x', score: 0.3 }];
    expect(auto('How long are cached answers kept?', enough).route).toBe('fast');
  });

  it('uses the weak-retrieval bar it is given, lower for the lexical hash embedder', () => {
    const sources: Source[] = [{ documentId: 'd', chunkId: 'c', text: 'x', score: 0.16 }];
    const input = {
      question: 'How long are cached answers kept?',
      requested: 'auto' as const,
      sources,
    };
    expect(chooseRoute(input).reason).toBe('weak_retrieval');
    expect(chooseRoute({ ...input, weakScore: defaultWeakScore('hash') })).toEqual({
      route: 'fast',
      reason: 'simple',
    });
    expect(defaultWeakScore('openai:text-embedding-3-small')).toBe(0.3);
  });
});
