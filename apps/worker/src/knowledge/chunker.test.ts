import { describe, expect, it } from 'vitest';
import { splitSentences } from '../text/tokenize.js';
import { createChunker } from './chunker.js';

const sentence = (n: number) => `Sentence number ${n} says something useful about topic ${n}.`;

describe('createChunker', () => {
  it('packs whole sentences into chunks no longer than chunkSize', () => {
    const text = Array.from({ length: 30 }, (_, i) => sentence(i)).join(' ');
    const chunks = createChunker({ chunkSize: 200, chunkOverlap: 0 })('doc', text);
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) {
      expect(chunk.text.length).toBeLessThanOrEqual(200);
      // Every chunk starts and ends on a sentence boundary.
      expect(chunk.text).toMatch(/^Sentence number \d+ .*\.$/);
    }
    // Without overlap every sentence appears exactly once, in order.
    expect(chunks.map((c) => c.text).join(' ')).toBe(text);
  });

  it('repeats trailing sentences of a chunk at the start of the next, up to chunkOverlap', () => {
    const text = Array.from({ length: 20 }, (_, i) => sentence(i)).join(' ');
    const chunks = createChunker({ chunkSize: 250, chunkOverlap: 80 })('doc', text);
    for (let i = 1; i < chunks.length; i++) {
      const previous = chunks[i - 1]!.text;
      const firstSentence = /^.*?\./.exec(chunks[i]!.text)![0];
      expect(previous.endsWith(firstSentence)).toBe(true);
      expect(firstSentence.length).toBeLessThanOrEqual(80);
    }
  });

  it('gives stable ids <documentId>#<index>, the same for the same text', () => {
    const chunker = createChunker({ chunkSize: 120, chunkOverlap: 30 });
    const text = Array.from({ length: 8 }, (_, i) => sentence(i)).join(' ');
    const a = chunker('guide/setup', text);
    expect(a.map((c) => c.id)).toEqual(a.map((_, i) => `guide/setup#${i}`));
    expect(chunker('guide/setup', text)).toEqual(a);
  });

  it('cuts a sentence longer than chunkSize at word boundaries', () => {
    const long = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ') + '.';
    const chunks = createChunker({ chunkSize: 100, chunkOverlap: 20 })('doc', long);
    for (const chunk of chunks) expect(chunk.text.length).toBeLessThanOrEqual(100);
    expect(chunks.map((c) => c.text).join(' ')).toContain('word0 word1');
    expect(chunks.at(-1)!.text).toContain('word99.');
  });

  it('keeps a short document in one chunk and refuses overlap >= size', () => {
    expect(createChunker({ chunkSize: 800, chunkOverlap: 100 })('d', 'Just one line.')).toEqual([
      { id: 'd#0', index: 0, text: 'Just one line.' },
    ]);
    expect(() => createChunker({ chunkSize: 100, chunkOverlap: 100 })).toThrow(RangeError);
  });
});

describe('headings in chunks', () => {
  it('keeps a heading apart from the sentence after it, so a chunk reads as the document did', () => {
    const [chunk] = createChunker({ chunkSize: 200, chunkOverlap: 20 })(
      'd',
      '# Resuming a stream\n\nA client sends the last id. The stream goes on.',
    );
    expect(chunk!.text).toBe(
      '# Resuming a stream\n\nA client sends the last id. The stream goes on.',
    );
    expect(splitSentences(chunk!.text)).toEqual([
      'Resuming a stream',
      'A client sends the last id.',
      'The stream goes on.',
    ]);
  });

  it('never ends a chunk with a heading: it opens the next, with its section', () => {
    const text = [
      '# Guide',
      '',
      ...Array.from({ length: 3 }, (_, i) => sentence(i)),
      '',
      '## Resuming',
      '',
      ...Array.from({ length: 3 }, (_, i) => sentence(i + 3)),
      '',
      '## Stopping',
      '',
      'Stopping ends the streams.',
    ].join('\n');
    for (const size of [120, 150, 200, 260]) {
      const chunks = createChunker({ chunkSize: size, chunkOverlap: 70 })('d', text);
      for (const chunk of chunks) {
        expect(chunk.text.length).toBeLessThanOrEqual(size);
        expect(chunk.text).not.toMatch(/(^|\n\n)#+ [^\n]*$/);
      }
      // Each heading stands on a line of its own, and every sentence is still there, in order.
      const resuming = chunks.find((c) => c.text.includes('## Resuming'))!;
      expect(resuming.text).toMatch(/(^|\n\n)## Resuming\n\nSentence number 3 /);
      const sentences = [...new Set(chunks.flatMap((c) => splitSentences(c.text)))];
      expect(sentences).toEqual([
        'Guide',
        ...Array.from({ length: 3 }, (_, i) => sentence(i)),
        'Resuming',
        ...Array.from({ length: 3 }, (_, i) => sentence(i + 3)),
        'Stopping',
        'Stopping ends the streams.',
      ]);
    }
  });
});
