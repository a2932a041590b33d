import { describe, expect, it } from 'vitest';
import { contentWords, splitSentences, STOPWORDS, tokenize } from './tokenize.js';

describe('tokenize', () => {
  it('lowercases and splits on punctuation, apostrophes and underscores', () => {
    expect(tokenize("Don't set CACHE_TTL_SECONDS, OK?")).toEqual([
      'don',
      't',
      'set',
      'cache',
      'ttl',
      'seconds',
      'ok',
    ]);
  });

  it('keeps Unicode letters and decimals whole', () => {
    expect(tokenize('Café naïve Ünïcode 0.92 and 127.0.0.1')).toEqual([
      'café',
      'naïve',
      'ünïcode',
      '0.92',
      'and',
      '127.0.0.1',
    ]);
  });

  it('treats composed and decomposed accents alike', () => {
    expect(tokenize('cafe\u0301')).toEqual(tokenize('caf\u00e9'));
  });

  it('returns nothing for text without words', () => {
    expect(tokenize(' -- !? ')).toEqual([]);
  });
});

describe('contentWords', () => {
  it('drops stopwords and contraction fragments', () => {
    expect(contentWords("What is the default of WORKER_CONCURRENCY? It doesn't say.")).toEqual([
      'default',
      'worker',
      'concurrency',
      'say',
    ]);
    expect(STOPWORDS.has('the')).toBe(true);
    expect(STOPWORDS.has('redis')).toBe(false);
  });
});

describe('splitSentences', () => {
  it('splits prose into sentences and keeps abbreviations and decimals intact', () => {
    expect(
      splitSentences(
        'Use a store, e.g. Redis 7.2 for queues. Then ask! Is it i.e. Chroma? The U.S. Army waits.',
      ),
    ).toEqual([
      'Use a store, e.g. Redis 7.2 for queues.',
      'Then ask!',
      'Is it i.e. Chroma?',
      'The U.S. Army waits.',
    ]);
  });

  it('treats headings, list items and blank lines as boundaries and joins soft-wrapped lines', () => {
    const text = [
      '# Caching',
      'Answers are cached',
      'for 900 seconds',
      '',
      '- first item that wraps',
      '  onto a second line',
      '* second item',
      '1. numbered item',
      '',
      '| variable | default |',
      '|---|---|',
      '| PORT | 3000 |',
      '```',
      'npm start',
      '```',
    ].join('\n');
    expect(splitSentences(text)).toEqual([
      'Caching',
      'Answers are cached for 900 seconds',
      'first item that wraps onto a second line',
      'second item',
      'numbered item',
      'variable, default',
      'PORT, 3000',
      'npm start',
    ]);
  });

  it('drops empty input and whitespace-only lines', () => {
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences(' \n\n \r\n ')).toEqual([]);
  });
});
