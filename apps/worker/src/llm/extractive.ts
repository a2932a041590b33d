import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import type { Source } from '@askq/shared';
import { contentWords, foldPlural, splitSentences } from '../text/tokenize.js';
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
// Jaccard similarity of content words above which two sentences say the same thing.
const DUPLICATE_SIMILARITY = 0.8;

interface Candidate {
  text: string;
  sourceNumber: number;
  words: Set<string>;
  score: number;
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
  const own = new Set(contentWords(input.question).map(foldPlural));
  const added = new Set(contentWords(input.standalone).map(foldPlural));
  for (const word of own) added.delete(word);
  if (added.size === 0) return undefined;
  const held = input.sources.map((source) => {
    const words = new Set(contentWords(source.text).map(foldPlural));
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
  const questionWords = new Set(contentWords(question).map(foldPlural));
  if (questionWords.size === 0) return NO_ANSWER;
  const kept = aboutTheSubject(input);

  const candidates: Candidate[] = [];
  sources.forEach((source, i) => {
    if (kept && !kept.has(i)) return;
    for (const text of splitSentences(source.text)) {
      candidates.push({
        text,
        sourceNumber: i + 1,
        words: new Set(contentWords(text).map(foldPlural)),
        score: 0,
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
    for (const word of questionWords) if (candidate.words.has(word)) matched += idf.get(word) ?? 0;
    if (matched === 0) continue;
    const source = sources[candidate.sourceNumber - 1];
    // Retrieval score nudges ties towards the better passage without silencing the others.
    const retrieval = 0.5 + 0.5 * Math.min(1, Math.max(0, source?.score ?? 0));
    const brevity = Math.min(1, candidate.words.size / SHORT_SENTENCE_WORDS);
    const form = CLOSED.test(candidate.text) ? 1 : FRAGMENT_FACTOR;
    candidate.score = (matched / totalIdf) * retrieval * brevity * form;
  }

  // Stable sort: equal scores keep source order, then sentence order.
  const ranked = candidates.filter((c) => c.score > 0).sort((a, b) => b.score - a.score);
  const best = ranked[0]?.score ?? 0;
  const picked: Candidate[] = [];
  for (const candidate of ranked) {
    if (picked.length >= maxSentences || candidate.score < best * MIN_SHARE_OF_BEST) break;
    if (picked.some((p) => similarity(p.words, candidate.words) >= DUPLICATE_SIMILARITY)) continue;
    picked.push(candidate);
  }
  if (picked.length === 0) return NO_ANSWER;
  return picked.map((c) => `${c.text} [${c.sourceNumber}]`).join(' ');
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
