import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QuestionResult, Source } from '@askq/shared';
import { hashEmbed } from '../embeddings/hash-embedder.js';
import { cosine } from '../embeddings/cosine.js';
import { citesAnyOf, concepts, defaultSemanticThreshold, sameQuestion } from './guards.js';

interface Pair {
  a: string;
  b: string;
  same: boolean;
  kind: string;
}
const pairs = JSON.parse(
  readFileSync(join(import.meta.dirname, '../../../../test/fixtures/semantic-pairs.json'), 'utf8'),
) as Pair[];

// What a semantic lookup with the hash embedder decides for a pair: similar enough and the guard.
const hits = (p: Pair) => {
  const [a, b] = hashEmbed([p.a, p.b], 2048);
  return cosine(a!, b!) >= defaultSemanticThreshold('hash') && sameQuestion(p.a, p.b);
};

describe('the shipped pair set', () => {
  it('holds at least 40 pairs of every kind', () => {
    expect(pairs.length).toBeGreaterThanOrEqual(40);
    const kinds = new Set(pairs.map((p) => p.kind));
    for (const kind of ['paraphrase', 'number', 'negation', 'qualifier', 'comparative', 'name']) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it('never lets a question take the answer of one that needs another', () => {
    const wrong = pairs.filter((p) => !p.same && hits(p)).map((p) => `${p.a} | ${p.b}`);
    expect(wrong).toEqual([]);
  });

  it('serves at least 80% of the paraphrases (the target is 60%)', () => {
    const paraphrases = pairs.filter((p) => p.same);
    const served = paraphrases.filter(hits);
    expect(served.length / paraphrases.length).toBeGreaterThanOrEqual(0.8);
  });
});

describe('sameQuestion', () => {
  it('joins inflections, synonyms and scaffolding', () => {
    expect(
      sameQuestion('How do I resume an event stream?', 'How can an event stream be resumed?'),
    ).toBe(true);
    expect(sameQuestion('What causes ocean tides?', 'Why do ocean tides happen?')).toBe(true);
    expect(sameQuestion('Can you please tell me how bcrypt works?', 'How does bcrypt work')).toBe(
      true,
    );
    expect(sameQuestion('How is paper made?', 'How do you make paper?')).toBe(true);
  });

  it('refuses other qualifiers, names, question words and comparatives', () => {
    const under = 'Do I need a permit for a greywater system under 250 litres per day?';
    expect(sameQuestion(under, under.replace('under', 'over'))).toBe(false);
    expect(
      sameQuestion('What happens before first crack?', 'What happens after first crack?'),
    ).toBe(false);
    expect(sameQuestion('When does the ferry leave?', 'Where does the ferry leave?')).toBe(false);
    expect(sameQuestion('What happened to Pompeii?', 'What happened to Herculaneum?')).toBe(false);
    expect(sameQuestion('Which tides are the largest?', 'Which tides are the smallest?')).toBe(
      false,
    );
    expect(sameQuestion('Sleep for adults?', 'Sleep for children?')).toBe(false);
    expect(sameQuestion('Is the API open in production?', 'Is the API open in sandbox?')).toBe(
      false,
    );
  });

  it('keeps the order of a relation', () => {
    expect(sameQuestion('Ferries from Oslo to Bergen', 'Ferries from Bergen to Oslo')).toBe(false);
    expect(sameQuestion('Is tea stronger than coffee?', 'Is coffee stronger than tea?')).toBe(
      false,
    );
    expect(sameQuestion('Is tea stronger than coffee?', 'is tea stronger than coffee')).toBe(true);
  });

  it('refuses what a review found: order, tense, modality, quantity, units, signs, scripts', () => {
    const differ: Array<[string, string]> = [
      ['How do I convert Celsius to Fahrenheit?', 'How do I convert Fahrenheit to Celsius?'],
      [
        'Was the lighthouse built before the harbour?',
        'Was the harbour built before the lighthouse?',
      ],
      ['Do all plans include backups?', 'Do any plans include backups?'],
      ['When did the museum open?', 'When will the museum open?'],
      ['Who was the CEO?', 'Who is the CEO?'],
      ['Can I use greywater?', 'Should I use greywater?'],
      ['How do I get a refund?', 'How do I give a refund?'],
      ['What is the mean salary?', 'What is the salary?'],
      ['Why isn’t my backup running?', 'Why is my backup running?'],
      ['Does water freeze at -5 °C?', 'Does water freeze at 5 °C?'],
      ['Revenue in ٢٠٢٣?', 'Revenue in ٢٠٢٤?'],
      ['Is a delay of 5 s too long?', 'Is a delay of 5 m too long?'],
    ];
    for (const [a, b] of differ) expect(sameQuestion(a, b), `${a} | ${b}`).toBe(false);
    // And still the same: a modal of possibility, or the same tense, changes nothing.
    expect(sameQuestion('How do I resume a stream?', 'How can I resume a stream?')).toBe(true);
    expect(sameQuestion('When did jazz start?', 'When did jazz begin?')).toBe(true);
    expect(sameQuestion('Revenue in ٢٠٢٣?', 'Revenue in 2023?')).toBe(true);
  });

  it('still compares numbers and negations', () => {
    expect(sameQuestion('Sales in 2023?', 'Sales in 2024?')).toBe(false);
    expect(
      sameQuestion('Which plans include backups?', 'Which plans do not include backups?'),
    ).toBe(false);
  });

  it('does not merge a permit (the licence) with allowing', () => {
    expect(concepts('Do I need a permit?')).not.toEqual(concepts('Do I need to be allowed?'));
  });
});

describe('citesAnyOf', () => {
  const source = (documentId: string): Source => ({
    documentId,
    chunkId: `${documentId}#0`,
    text: 't',
    score: 1,
  });
  const cached = (answer: string, sources: Source[]) =>
    ({ answer, sources }) as unknown as QuestionResult;

  it('checks the documents the answer cites, else all of its sources', () => {
    const result = cached('Ferries leave at noon [2].', [source('bus'), source('ferry')]);
    expect(citesAnyOf(result, [source('ferry')])).toBe(true);
    expect(citesAnyOf(result, [source('bus')])).toBe(false);
    expect(citesAnyOf(cached('No marks.', [source('bus')]), [source('bus')])).toBe(true);
    expect(citesAnyOf(cached('No marks.', [source('bus')]), [source('tram')])).toBe(false);
  });
});
