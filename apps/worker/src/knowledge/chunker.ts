import { termCounts, type TermCounts } from '../text/terms.js';
import { splitSentences } from '../text/tokenize.js';

/** One piece of a document, in document order. */
export interface Chunk {
  /** `<documentId>#<index>`: stable, so re-ingesting a document overwrites exactly its chunks. */
  id: string;
  index: number;
  text: string;
  /** Its index terms, when chunked for storage (see terms.ts). */
  lexical?: { counts: TermCounts; length: number };
}

/** Sizes in characters. */
export interface ChunkerOptions {
  /** Longest chunk; a single longer sentence is cut at word boundaries. */
  chunkSize: number;
  /** Trailing sentences of a chunk repeated at the start of the next, up to this length. */
  chunkOverlap: number;
}

/**
 * A sentence-aware chunker: whole sentences are packed into chunks of at most `chunkSize`
 * characters, and each chunk starts with the last sentences of the one before (up to
 * `chunkOverlap` characters) so a fact spanning a boundary is still found in one piece.
 */
export function createChunker(options: ChunkerOptions) {
  if (options.chunkOverlap >= options.chunkSize) {
    throw new RangeError('chunkOverlap must be smaller than chunkSize');
  }
  return (documentId: string, text: string): Chunk[] => {
    const sentences = splitSentences(text).flatMap((s) => cutLong(s, options.chunkSize));
    const chunks: string[][] = [];
    let current: string[] = [];
    let length = 0;
    for (const sentence of sentences) {
      const gap = current.length === 0 ? 0 : separator(current.at(-1)!).length;
      const added = length === 0 ? sentence.length : length + gap + sentence.length;
      if (added > options.chunkSize && current.length > 0) {
        chunks.push(current);
        current = overlapOf(current, options.chunkOverlap, options.chunkSize - sentence.length - 2);
        length = joinedLength(current);
      }
      const before = current.at(-1);
      current.push(sentence);
      // Kept as it grows rather than summed again per sentence: a chunk of hundreds of one-word
      // sentences would otherwise cost a pass over all of them for each one added.
      length =
        before === undefined
          ? sentence.length
          : length + separator(before).length + sentence.length;
    }
    if (current.length > 0) chunks.push(current);
    return chunks.map((parts, index) => ({
      id: `${documentId}#${index}`,
      index,
      text: joined(parts),
    }));
  };
}

/** Chunks with their index terms counted, as they are stored (for the lexical index). */
export function withTerms(chunks: Chunk[]): Chunk[] {
  return chunks.map((c) => ({ ...c, lexical: termCounts(c.text) }));
}

// A heading, a list item or another fragment ends without closing punctuation.
const CLOSED = /[.!?:;…。！？]["'`)\]]*$/u;

/**
 * What follows a part in a chunk's text: a space after a sentence, a blank line after a fragment
 * (a heading), so that reading the chunk again (the extractive answer splits it into sentences)
 * finds the heading apart from the sentence after it, as it was in the document.
 */
function separator(part: string): string {
  return CLOSED.test(part) ? ' ' : '\n\n';
}

function joined(parts: string[]): string {
  let text = parts[0] ?? '';
  for (let i = 1; i < parts.length; i++) text += separator(parts[i - 1]!) + parts[i];
  return text;
}

/** Length of the parts as {@link joined} joins them. */
function joinedLength(parts: string[]): number {
  let length = 0;
  parts.forEach((p, i) => (length += p.length + (i === 0 ? 0 : separator(parts[i - 1]!).length)));
  return length;
}

/** The trailing sentences that fit in `overlap` characters and still leave room for the next. */
function overlapOf(parts: string[], overlap: number, room: number): string[] {
  const kept: string[] = [];
  let length = 0;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] ?? '';
    const next = length === 0 ? part.length : length + separator(part).length + part.length;
    if (next > Math.min(overlap, room)) break;
    kept.unshift(part);
    length = next;
  }
  return kept;
}

/** Cuts a sentence longer than `size` at word boundaries (or hard, for a giant word). */
function cutLong(sentence: string, size: number): string[] {
  if (sentence.length <= size) return [sentence];
  const pieces: string[] = [];
  let rest = sentence;
  while (rest.length > size) {
    const space = rest.lastIndexOf(' ', size);
    const cut = space > size / 2 ? space : size;
    pieces.push(rest.slice(0, cut).trim());
    rest = rest.slice(cut).trim();
  }
  if (rest) pieces.push(rest);
  return pieces;
}
