import { stemmer } from 'stemmer';
import { STOPWORDS, tokenize } from './tokenize.js';

/** A text's index terms and how often each occurs, in order of first occurrence. */
export type TermCounts = Array<[term: string, count: number]>;

// Longer tokens are not words (hashes, base64, runs of one letter): indexing them would only grow
// the index. Numbers and identifiers up to this length are kept.
const MAX_TERM_CHARS = 32;
/** Distinct terms indexed per text: a chunk is bounded in size, this bounds its postings too. */
export const MAX_TERMS_PER_TEXT = 256;

/**
 * The index form of a word: Porter's stem for words ("resuming", "resumed" -> "resum"), a number
 * or identifier with digits as it is ("2024", "0.92").
 */
export function stem(word: string): string {
  return /\p{N}/u.test(word) ? word : stemmer(word);
}

/** The stemmed content words of a text, in order, long tokens left out. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const token of tokenize(text)) {
    if (token.length > MAX_TERM_CHARS || STOPWORDS.has(token)) continue;
    out.push(stem(token));
  }
  return out;
}

/** The terms of a text with their counts, at most {@link MAX_TERMS_PER_TEXT} distinct ones. */
export function termCounts(text: string): { counts: TermCounts; length: number } {
  const counts = new Map<string, number>();
  let length = 0;
  for (const term of terms(text)) {
    length++;
    const seen = counts.get(term);
    if (seen !== undefined) counts.set(term, seen + 1);
    else if (counts.size < MAX_TERMS_PER_TEXT) counts.set(term, 1);
  }
  return { counts: [...counts], length };
}
