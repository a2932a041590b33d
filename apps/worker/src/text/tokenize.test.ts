import { describe, expect, it } from 'vitest';
import { contentWords, sentenceSegments, splitSentences, STOPWORDS, tokenize } from './tokenize.js';

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

  it('ends no sentence at a mark with no space after it, and keeps the text as it was', () => {
    // ICU breaks after any "?" or "!": inside a query string it is no sentence end.
    expect(
      splitSentences('Send it as the `?lastEventId=` query parameter. Or ask Yahoo!Mail? Fine.'),
    ).toEqual(['Send it as the `?lastEventId=` query parameter.', 'Or ask Yahoo!Mail?', 'Fine.']);
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

  it("strips a heading's closing hashes only after whitespace", () => {
    expect(splitSentences('## Title ##\n# C#\n# ###\n# Tabs\t#')).toEqual(['Title', 'C#', 'Tabs']);
  });

  it('merges abbreviations into their sentence however many there are', () => {
    expect(splitSentences('See Dr. Smith. Then e.g. U.S. Army.')).toEqual([
      'See Dr. Smith.',
      'Then e.g. U.S. Army.',
    ]);
    const doctors = 'Dr. '.repeat(50_000).trim();
    expect(splitSentences(doctors)).toEqual([doctors]);
  });
});

describe('sentenceSegments', () => {
  it('gives back the whole text, in order, across window boundaries', () => {
    const text = 'Short one. ' + 'A long sentence without an end '.repeat(200) + 'ends. Last one.';
    const segments = [...sentenceSegments(text)];
    expect(segments.join('')).toBe(text);
    expect(segments.map((s) => s.trim())).toEqual([
      'Short one.',
      ('A long sentence without an end '.repeat(200) + 'ends.').trim(),
      'Last one.',
    ]);
  });

  it('keeps a word longer than a window whole, surrogate pairs included', () => {
    const word = '\u{1F600}'.repeat(3_000);
    expect([...sentenceSegments(word)]).toEqual([word]);
  });
});

// Inputs that took minutes or hours before their regular expressions and ICU calls were made
// linear. At the largest accepted size (1 MiB documents) each must end in a few seconds at most;
// the deadline is generous on purpose, so only super-linear work can miss it.
describe('pathological text at the largest accepted size', () => {
  const MIB = 1_048_576;
  const inputs: Record<string, string> = {
    'a heading with a long run of spaces': `# a${' '.repeat(MIB - 8)}#y`,
    'capitalised abbreviations (quadratic in ICU)': 'Ab. '.repeat(MIB / 4),
    '"Dr. " repeated': 'Dr. '.repeat(MIB / 4),
    'one giant word': 'a'.repeat(MIB),
    'a flood of ellipses': '\u2026'.repeat(MIB / 3),
    'runs of #': '#'.repeat(MIB),
    'deep lists': `${'- '.repeat(500)}item\n`.repeat(MIB / 1005),
    'blank lines': '\n'.repeat(MIB),
    'marks glued to words': 'a?b!'.repeat(MIB / 4),
  };
  for (const [name, text] of Object.entries(inputs)) {
    it(`splits ${name} in linear time`, { timeout: 30_000 }, () => {
      const started = performance.now();
      const sentences = splitSentences(text);
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(sentences.join(' ').length).toBeLessThanOrEqual(text.length);
    });
  }
});
