import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { Source } from '@askq/shared';
import { terms } from '../text/terms.js';
import { neutralize } from './fence.js';
import { splitUnits } from '../text/tokenize.js';
import type { ChatModel, GenerateInput, GenerationChunk } from './chat-model.js';

/** Options of {@link createExtractiveModel}. */
export interface ExtractiveModelOptions {
  /** Most sentences in an answer. Default 3. */
  maxSentences?: number;
  /** Pause between tokens in milliseconds, so a demo streams visibly like a model. Default 0. */
  tokenDelayMs?: number;
  /**
   * Picks the answer's sentences, e.g. on a worker thread (it splits every source into sentences).
   * Default: {@link extract} on the calling thread.
   */
  extract?: (input: ExtractInput, signal: AbortSignal) => Promise<string>;
}

/** What the extractive answer is chosen from. */
export interface ExtractInput {
  question: string;
  /**
   * A follow-up's standalone form: the words it adds to `question` name what the conversation
   * is about, and only the passages about that are answered from.
   */
  standalone?: string | undefined;
  sources: Source[];
  maxSentences: number;
}

/** The extractive model's answer when no sentence of the sources matches the question. */
export const NO_ANSWER = 'The sources do not contain an answer to this question.';

// Sentences shorter than this many content words (headings, fragments) are scaled down.
const SHORT_SENTENCE_WORDS = 5;
// Headings, table rows and other fragments without closing punctuation make poor answers.
const FRAGMENT_FACTOR = 0.5;
const CLOSED = /[.!?:;…。！？]["'`)\]]*$/u;
// Sentences far weaker than the best one only dilute the answer.
const MIN_SHARE_OF_BEST = 0.25;
// How much each lower retrieval rank discounts a passage's sentences.
const RANK_DISCOUNT = 0.5;
// Past this many content words a sentence's score shrinks with the square root of its length.
const LONG_SENTENCE_WORDS = 20;
// Relevance against repetition in the choice of each next sentence.
const MMR_LAMBDA = 0.7;
// A sentence this close to the best is added even if it covers no new question word.
const CLOSE_TO_BEST = 0.8;
// How much a question word counts when only the heading above a sentence holds it.
const SECTION_WEIGHT = 0.5;
// Jaccard similarity of content words above which two sentences say the same thing.
const DUPLICATE_SIMILARITY = 0.8;

interface Candidate {
  text: string;
  sourceNumber: number;
  words: Set<string>;
  /** The words of the heading the sentence is under, in its passage. */
  section: Set<string>;
  score: number;
  /** Share of the question's words (by idf) the sentence holds. */
  coverage: number;
}

/**
 * The offline `extractive` provider (SPEC 5): answers with the sources' sentences that best match
 * the question, each cited as [n], streamed one word per token.
 */
export function createExtractiveModel(options: ExtractiveModelOptions = {}): ChatModel {
  const maxSentences = options.maxSentences ?? 3;
  if (!Number.isInteger(maxSentences) || maxSentences < 1) {
    throw new RangeError(`maxSentences must be a positive integer, got ${maxSentences}`);
  }
  const pick = options.extract ?? ((input) => Promise.resolve(extract(input)));
  return {
    modelFor: () => 'extractive',
    stream: (input) => streamAnswer(input, maxSentences, options.tokenDelayMs ?? 0, pick),
  };
}

async function* streamAnswer(
  input: GenerateInput,
  maxSentences: number,
  tokenDelayMs: number,
  pick: NonNullable<ExtractiveModelOptions['extract']>,
): AsyncGenerator<GenerationChunk> {
  const { signal } = input;
  if (signal.aborted) return;
  const answer = await pick(
    {
      question: input.question,
      standalone: input.standalone,
      sources: input.sources,
      maxSentences,
    },
    signal,
  );
  // Split before each whitespace run so every chunk is one word with its leading space, and the
  // chunks join back to exactly the answer.
  const tokens = answer.split(/(?<=\S)(?=\s)/);
  for (const text of tokens) {
    // Yield to the event loop so tokens stream out and an abort can land between them.
    if (tokenDelayMs > 0) await sleep(tokenDelayMs, undefined, { signal }).catch(() => undefined);
    else await setImmediate();
    if (signal.aborted) return;
    yield { type: 'token', text };
  }
  yield {
    type: 'usage',
    promptTokens:
      countWords(input.question) + input.sources.reduce((n, s) => n + countWords(s.text), 0),
    completionTokens: tokens.length,
  };
}

/**
 * The sources a follow-up is answered from: those about what the conversation is about. A
 * passage is kept when it holds at least half as many of the standalone form's added words as
 * the passage holding the most: "How long does the crossing take?" about the Mull ferry is
 * answered from the Mull passage, not from the Skye one that says the same of another crossing.
 */
function aboutTheSubject(input: ExtractInput): Set<number> | undefined {
  if (!input.standalone || input.standalone === input.question) return undefined;
  const own = new Set(terms(input.question));
  const added = new Set(terms(input.standalone));
  for (const word of own) added.delete(word);
  if (added.size === 0) return undefined;
  const held = input.sources.map((source) => {
    const words = new Set(terms(source.text));
    let n = 0;
    for (const word of added) if (words.has(word)) n++;
    return n;
  });
  const most = Math.max(...held);
  if (most === 0) return undefined;
  return new Set(held.flatMap((n, i) => (n * 2 >= most ? [i] : [])));
}

/** The extractive answer text for a question over sources. */
export function extract(input: ExtractInput): string {
  const { question, sources, maxSentences } = input;
  const questionWords = new Set(terms(question));
  if (questionWords.size === 0) return NO_ANSWER;
  const kept = aboutTheSubject(input);

  const candidates: Candidate[] = [];
  sources.forEach((source, i) => {
    if (kept && !kept.has(i)) return;
    // A heading is no answer, but it says what the sentences under it are about.
    let section = new Set<string>();
    for (const unit of splitUnits(source.text)) {
      if (unit.heading > 0) {
        section = new Set(terms(unit.text));
        continue;
      }
      candidates.push({
        text: unit.text,
        sourceNumber: i + 1,
        words: new Set(terms(unit.text)),
        section,
        score: 0,
        coverage: 0,
      });
    }
  });

  // Inverse document frequency over the candidate sentences: a word every passage shares (the
  // product name, say) says little about which sentence answers the question.
  const idf = new Map<string, number>();
  for (const word of questionWords) {
    const df = candidates.reduce((n, c) => n + (c.words.has(word) ? 1 : 0), 0);
    idf.set(word, Math.log(1 + candidates.length / (1 + df)));
  }
  const totalIdf = [...idf.values()].reduce((a, b) => a + b, 0);

  for (const candidate of candidates) {
    let matched = 0;
    let context = 0;
    for (const word of questionWords) {
      if (candidate.words.has(word)) matched += idf.get(word) ?? 0;
      else if (candidate.section.has(word)) context += idf.get(word) ?? 0;
    }
    if (matched === 0) continue;
    matched += SECTION_WEIGHT * context;
    // The passage retrieval ranked first most often holds the answer (hybrid retrieval puts the
    // right document first for ~9 questions in 10); later ones are heard, a little less.
    const retrieval = 1 / (1 + RANK_DISCOUNT * (candidate.sourceNumber - 1));
    const brevity = Math.min(1, candidate.words.size / SHORT_SENTENCE_WORDS);
    // A long sentence that matches as much as a short one says it less directly.
    const length = Math.min(1, Math.sqrt(LONG_SENTENCE_WORDS / Math.max(1, candidate.words.size)));
    const form = CLOSED.test(candidate.text) ? 1 : FRAGMENT_FACTOR;
    candidate.coverage = matched / totalIdf;
    candidate.score = candidate.coverage * retrieval * brevity * length * form;
  }
  return mmr(candidates, questionWords, maxSentences);
}

/**
 * Maximal marginal relevance (Carbonell and Goldstein, 1998): the best sentence first, then each
 * next one for its relevance less its likeness to those already chosen, so the answer does not
 * repeat itself. A further sentence is added only if it answers a part of the question the
 * chosen ones leave out (a question word they lack), or is nearly as relevant as the best, or
 * answers the question as fully from another passage (two ferries, two crossing times): short
 * answers that say it once.
 */
function mmr(candidates: Candidate[], questionWords: Set<string>, maxSentences: number): string {
  // Stable sort: equal scores keep source order, then sentence order.
  const pool = candidates.filter((c) => c.score > 0).sort((a, b) => b.score - a.score);
  const best = pool[0]?.score ?? 0;
  const picked: Candidate[] = [];
  const covered = new Set<string>();
  while (picked.length < maxSentences && pool.length > 0) {
    let choice = -1;
    let value = -Infinity;
    pool.forEach((c, i) => {
      const likeness = Math.max(0, ...picked.map((p) => similarity(p.words, c.words)));
      const marginal = MMR_LAMBDA * c.score - (1 - MMR_LAMBDA) * likeness * best;
      if (marginal > value) [choice, value] = [i, marginal];
    });
    const [candidate] = pool.splice(choice, 1);
    if (!candidate || candidate.score < best * MIN_SHARE_OF_BEST) break;
    const adds = [...questionWords].some((w) => candidate.words.has(w) && !covered.has(w));
    const duplicate = picked.some(
      (p) => similarity(p.words, candidate.words) >= DUPLICATE_SIMILARITY,
    );
    const parallel =
      candidate.coverage >= (picked[0]?.coverage ?? 0) &&
      picked.every((p) => p.sourceNumber !== candidate.sourceNumber);
    const worth = adds || parallel || candidate.score >= best * CLOSE_TO_BEST;
    if (duplicate || (picked.length > 0 && !worth)) continue;
    picked.push(candidate);
    for (const w of candidate.words) if (questionWords.has(w)) covered.add(w);
  }
  if (picked.length === 0) return NO_ANSWER;
  // A source's own "[2]" must not read as askq's citation in the answer (fence.ts).
  return picked.map((c) => `${neutralize(c.text)} [${c.sourceNumber}]`).join(' ');
}

function similarity(a: Set<string>, b: Set<string>): number {
  let shared = 0;
  for (const word of a) if (b.has(word)) shared++;
  const union = a.size + b.size - shared;
  return union === 0 ? 1 : shared / union;
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length;
}
