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
      const added = length === 0 ? sentence.length : length + 1 + sentence.length;
      if (added > options.chunkSize && current.length > 0) {
        chunks.push(current);
        current = overlapOf(current, options.chunkOverlap, options.chunkSize - sentence.length - 1);
        length = joinedLength(current);
      }
      current.push(sentence);
      // Kept as it grows rather than summed again per sentence: a chunk of hundreds of one-word
      // sentences would otherwise cost a pass over all of them for each one added.
      length = length === 0 ? sentence.length : length + 1 + sentence.length;
    }
    if (current.length > 0) chunks.push(current);
    return chunks.map((parts, index) => ({
      id: `${documentId}#${index}`,
      index,
      text: parts.join(' '),
    }));
  };
}

/** Chunks with their index terms counted, as they are stored (for the lexical index). */
export function withTerms(chunks: Chunk[]): Chunk[] {
  return chunks.map((c) => ({ ...c, lexical: termCounts(c.text) }));
}

/** Length of parts joined by single spaces. */
function joinedLength(parts: string[]): number {
  return parts.reduce((sum, p) => sum + p.length, 0) + Math.max(0, parts.length - 1);
}

/** The trailing sentences that fit in `overlap` characters and still leave room for the next. */
function overlapOf(parts: string[], overlap: number, room: number): string[] {
  const kept: string[] = [];
  let length = 0;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] ?? '';
    const next = length === 0 ? part.length : length + 1 + part.length;
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
