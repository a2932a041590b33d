import { foldPlural, STOPWORDS, tokenize } from '../text/tokenize.js';
import type { Embedder } from './embedder.js';

/** Options of {@link createHashEmbedder}. */
export interface HashEmbedderOptions {
  /** Vector length; a power of two spreads buckets most evenly. Default 2048. */
  dimension?: number;
  /**
   * Computes the vectors, e.g. on a worker thread (the work is CPU-bound and scales with the
   * text). Default: {@link hashEmbed} on the calling thread.
   */
  compute?: (texts: string[], dimension: number, signal?: AbortSignal) => Promise<number[][]>;
}

// A phrase match is evidence, but weaker than the words it is made of, which already count.
const BIGRAM_WEIGHT = 0.5;

const encoder = new TextEncoder();

/** FNV-1a over UTF-8 bytes, then murmur3's finaliser: FNV alone mixes short keys' low bits poorly. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The offline `hash` embedder (SPEC 5): signed feature hashing of content-word unigrams and bigrams,
 * L2-normalised. Lexical, deterministic across processes and machines, no model to download.
 */
export function createHashEmbedder(options: HashEmbedderOptions = {}): Embedder {
  const dimension = options.dimension ?? 2048;
  if (!Number.isInteger(dimension) || dimension < 1 || dimension > 2 ** 30) {
    throw new RangeError(`hash embedder dimension must be an integer in 1..2^30, got ${dimension}`);
  }
  const compute =
    options.compute ??
    ((texts: string[], size: number, signal?: AbortSignal) =>
      // Synchronous here, so only an abort before the call can be seen; a throw inside the
      // executor rejects the promise, as an aborted fetch would.
      new Promise<number[][]>((resolve) => {
        signal?.throwIfAborted();
        resolve(hashEmbed(texts, size));
      }));
  return {
    name: 'hash',
    dimension,
    embed: (texts, signal) => compute(texts, dimension, signal),
  };
}

/** The `hash` embedder's vectors of texts, computed on the calling thread. */
export function hashEmbed(texts: string[], dimension: number): number[][] {
  return texts.map((text) => embedOne(text, dimension));
}

function embedOne(text: string, dimension: number): number[] {
  // Feature -> [base weight, occurrences].
  const features = new Map<string, [number, number]>();
  const add = (feature: string, weight: number): void => {
    const seen = features.get(feature);
    if (seen) seen[1] += 1;
    else features.set(feature, [weight, 1]);
  };
  // Plurals folded so "which answers" finds "the answer"; stopwords are kept as they are so the
  // bigram rule below still recognises them.
  const tokens = tokenize(text).map((t) => (STOPWORDS.has(t) ? t : foldPlural(t)));
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (STOPWORDS.has(token)) continue;
    // Namespaced so a unigram can never collide with a bigram by construction.
    add(`u:${token}`, 1);
    // Bigrams only of content words that are truly adjacent: "event stream" and "retry after" are
    // kept, while "of the" (shared by every English text) and "cost living" (from "cost of living",
    // a phrase the text never used) are not.
    const next = tokens[i + 1];
    if (next !== undefined && !STOPWORDS.has(next)) add(`b:${token} ${next}`, BIGRAM_WEIGHT);
  }

  const vector = new Array<number>(dimension).fill(0);
  for (const [feature, [weight, count]] of features) {
    const h = hash32(feature);
    // Bit 0 picks the sign and the other bits the bucket, so colliding features tend to cancel
    // instead of piling up. Sublinear counts stop one repeated word from dominating a long chunk.
    const sign = (h & 1) === 0 ? 1 : -1;
    const bucket = (h >>> 1) % dimension;
    vector[bucket]! += sign * weight * (1 + Math.log(count));
  }

  let norm = 0;
  for (const value of vector) norm += value * value;
  // A text with no content words stays the zero vector rather than dividing by zero.
  if (norm === 0) return vector;
  norm = Math.sqrt(norm);
  return vector.map((value) => value / norm);
}
