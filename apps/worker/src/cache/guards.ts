import type { QuestionResult, Source } from '@askq/shared';
import { STOPWORDS, tokenize } from '../text/tokenize.js';
import { stem } from '../text/terms.js';
import { questionSignals } from './signals.js';

/**
 * Whether one question's answer may serve another, however alike their embeddings: the
 * semantic cache's guard. Embeddings place "under 250 litres" beside "over 250 litres", "adults"
 * beside "children" and "Pompeii" beside "Herculaneum". The rule: every meaning-bearing word of
 * one question must have an equivalent in the other. Words are compared by stem (resume,
 * resumed, resuming), then through a small set of synonyms (big/large, buy/purchase, why/cause);
 * the words that shape a question without changing what it asks ("please", "can you tell me",
 * "exactly") may differ; so may pure function words, except the qualifiers that decide an
 * answer (under/over, before/after, more/less, first/last, when/where/who). Numbers and
 * negations must match as before. Where a question relates two things (than, from, versus), the
 * words must also come in the same order: "from Oslo to Bergen" is not "from Bergen to Oslo".
 * A guard that refuses costs a cache miss; one that accepts wrongly serves a wrong answer, so
 * every doubt refuses.
 */
export function sameQuestion(a: string, b: string): boolean {
  return sameShape(shapeOf(a), shapeOf(b));
}

/** What the guard compares of a question, read once (a lookup compares one against several). */
export interface QuestionShape {
  signals: string;
  concepts: string[];
  relates: boolean;
}

export function shapeOf(question: string): QuestionShape {
  const { numbers, negations } = questionSignals(normalizeApostrophes(question));
  return {
    signals: `${numbers.join('|')}\n${negations.join('|')}`,
    concepts: concepts(question),
    relates: relates(question),
  };
}

/** {@link sameQuestion} of two questions already read. */
export function sameShape(x: QuestionShape, y: QuestionShape): boolean {
  if (x.signals !== y.signals) return false;
  if (x.concepts.join(' ') === y.concepts.join(' ')) return true;
  if (x.relates || y.relates) return false;
  return sameSet(x.concepts, y.concepts);
}

/**
 * The similarity a semantic-cache hit needs by default. The guard decides whether two questions
 * ask the same; the similarity only finds the candidates. The `hash` embedder hashes surface
 * words, so "resume"/"resumed" or "start"/"begin" share no bucket and its paraphrases score
 * 0.44-1.0 (the shipped pair set); a model embedder scores paraphrases far higher.
 */
export function defaultSemanticThreshold(embedder: string): number {
  return embedder === 'hash' ? 0.4 : 0.8;
}

// Function words that decide an answer, kept although they are stop words. Each has its
// opposite here, or is a question word that asks for a different kind of answer.
const QUALIFIERS: ReadonlySet<string> = new Set(
  (
    'under over above below before after more most less least fewer few first last up down ' +
    'off out inside outside within beyond until since against between during with without ' +
    'when where who whom whose why only same other than from into'
  ).split(' '),
);

// Words that make two sets of words relations when present: their order then matters ("from
// Celsius to Fahrenheit", "the lighthouse before the harbour"). Not "of": "the cause of tides"
// is "what causes tides", and "stages of sleep" the "sleep stages".
const ORDERED_WORDS: ReadonlySet<string> = new Set([
  'than',
  'from',
  'to',
  'by',
  'versus',
  'vs',
  'into',
  'between',
  'before',
  'after',
  'over',
  'under',
  'against',
]);

/** Whether a question relates things (from … to …, … before …), so its word order matters. */
function relates(question: string): boolean {
  return tokenize(normalizeApostrophes(question.normalize('NFKC').toLowerCase())).some((token) =>
    ORDERED_WORDS.has(token),
  );
}

// Function words whose class decides an answer, each mapped to its class; a question without
// one is in the default class (present tense, plain possibility), which is left out. So "was"
// and "is", "did" and "will", "should" and "can", "all" and "any" tell questions apart, while
// "how do I" and "how can I" do not.
const CLASSES = new Map(
  Object.entries({
    did: 'past',
    was: 'past',
    were: 'past',
    had: 'past',
    will: 'future',
    shall: 'future',
    should: 'obligation',
    must: 'obligation',
    ought: 'obligation',
    would: 'conditional',
    all: 'all',
    every: 'all',
    both: 'all',
    any: 'some',
    some: 'some',
  }),
);

// Question scaffolding: words that frame a question without changing what it asks.
const LIGHT: ReadonlySet<string> = new Set(
  (
    'please tell explain describe know wonder curious exactly actually really basically ' +
    'happen occur possible able way thing kind show display anyone someone ' +
    'somebody question wondering help like want per'
  )
    .split(' ')
    .map((w) => stem(w)),
);

// Words that ask the same thing, each group one concept. Kept small: a synonym wrongly listed
// here is a wrong answer served. Forms of one word are joined by stemming, not listed.
const SYNONYMS: readonly string[] = [
  'big large huge',
  'bigger larger',
  'biggest largest',
  'small little tiny',
  'smaller',
  'smallest',
  'fast quick rapid',
  'faster quicker',
  'fastest quickest',
  'start begin commence',
  'stop end halt',
  'buy purchase',
  'car vehicle automobile',
  'use utilize utilise employ',
  'need require',
  'why cause reason',
  'help assist',
  'show display',
  'error fault',
  'price cost',
  'allow permit let',
  'choose pick select',
  'fix repair',
];
const CANONICAL = new Map<string, string>();
for (const group of SYNONYMS) {
  const [first, ...rest] = group.split(' ').map((w) => stem(w));
  for (const word of [first!, ...rest]) CANONICAL.set(word, first!);
}
// "allow permit" would merge "permit" the noun ("a greywater permit") with "allow": a noun of a
// licence is not a synonym of letting. The verb forms stay merged through "allow" only.
CANONICAL.delete(stem('permit'));

// Irregular forms stemming cannot join to their verb.
const IRREGULAR = new Map(
  Object.entries({
    made: 'make',
    began: 'begin',
    begun: 'begin',
    bought: 'buy',
    took: 'take',
    taken: 'take',
    went: 'go',
    gone: 'go',
    built: 'build',
    found: 'find',
    chose: 'choose',
    chosen: 'choose',
    ran: 'run',
    grew: 'grow',
    grown: 'grow',
  }),
);
// "What makes X bitter" and "how come X is bitter" ask why.
const ASKS_WHY = /\b(?:what\s+(?:makes|made|causes|caused)|how\s+come)\b/gu;

/** A question's meaning-bearing words, in order: stemmed, synonyms merged, scaffolding dropped. */
export function concepts(question: string): string[] {
  const out: string[] = [];
  const text = normalizeApostrophes(question.normalize('NFKC').toLowerCase()).replace(
    ASKS_WHY,
    'why',
  );
  let afterNumber = false;
  for (const word of tokenize(text)) {
    const token = IRREGULAR.get(word) ?? word;
    const wasNumber = afterNumber;
    afterNumber = /^\p{N}/u.test(token);
    const kind = CLASSES.get(token);
    if (kind) {
      out.push(`:${kind}`);
      continue;
    }
    // A one- or two-letter stop word right after a number is its unit ("5 s", "5 m"), kept.
    if (wasNumber && token.length <= 2 && STOPWORDS.has(token)) {
      out.push(`:unit:${token}`);
      continue;
    }
    // Numbers and negations are compared by sameSignals.
    if (afterNumber) continue;
    if (STOPWORDS.has(token) && !QUALIFIERS.has(token)) continue;
    const stemmed = stem(token);
    const concept = CANONICAL.get(stemmed) ?? stemmed;
    if (LIGHT.has(concept)) continue;
    out.push(concept);
  }
  return out;
}

function sameSet(x: string[], y: string[]): boolean {
  const a = new Set(x);
  const b = new Set(y);
  return a.size === b.size && [...a].every((w) => b.has(w));
}

/**
 * Whether a cached answer rests on any of the documents a question now retrieves: the documents
 * it cites ([n] marks), or all of its sources when it cites none. A paraphrase retrieves the same
 * documents; a hit that shares none of them answers another question.
 */
export function citesAnyOf(cached: QuestionResult, retrieved: Source[]): boolean {
  if (cached.sources.length === 0 || retrieved.length === 0) return true;
  const cited = new Set<string>();
  for (const match of cached.answer.matchAll(/\[(\d{1,3})\]/g)) {
    const source = cached.sources[Number(match[1]) - 1];
    if (source) cited.add(source.documentId);
  }
  const basis = cited.size > 0 ? cited : new Set(cached.sources.map((s) => s.documentId));
  return retrieved.some((s) => basis.has(s.documentId));
}

/** Typographic apostrophes as ASCII ones, so "isn’t" is read as "isn't". */
function normalizeApostrophes(text: string): string {
  return text.replace(/[\u2019\u02bc\u2018]/g, "'");
}
