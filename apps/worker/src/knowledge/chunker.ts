import { termCounts, type TermCounts } from '../text/terms.js';
import { splitUnits } from '../text/tokenize.js';

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
 *
 * Markdown headings stay headings (`## Resuming`, on a line of their own), so a reader of the
 * chunk (the extractive answer, a model) knows what the sentences under one are about, and a
 * heading never ends a chunk: it opens the next, with its section, and no overlap from before.
 * (Repeating a section's heading at the top of each of its chunks was tried, and cost recall on
 * the shipped eval set: every chunk of a section then matched its heading's words alike.)
 */
export function createChunker(options: ChunkerOptions) {
  if (options.chunkOverlap >= options.chunkSize) {
    throw new RangeError('chunkOverlap must be smaller than chunkSize');
  }
  return (documentId: string, text: string): Chunk[] => {
    const chunks: string[][] = [];
    let current: string[] = [];
    let length = 0;
    for (const unit of splitUnits(text)) {
      const marked = unit.heading > 0 ? `${'#'.repeat(unit.heading)} ${unit.text}` : unit.text;
      for (const part of cutLong(marked, options.chunkSize)) {
        const added =
          length === 0 ? part.length : length + gap(current.at(-1)!, part) + part.length;
        if (added > options.chunkSize && current.length > 0) {
          // A heading that fits before the sentence after it moves to the next chunk with it.
          const last = current.at(-1)!;
          const moves = isHeading(last) && last.length + 2 + part.length <= options.chunkSize;
          if (moves) current.pop();
          if (current.length > 0) chunks.push(current);
          current = moves
            ? [last]
            : overlapOf(current, options.chunkOverlap, options.chunkSize - part.length - 2);
          length = joinedLength(current);
        }
        const before = current.at(-1);
        current.push(part);
        // Kept as it grows rather than summed again per sentence: a chunk of hundreds of one-word
        // sentences would otherwise cost a pass over all of them for each one added.
        length = before === undefined ? part.length : length + gap(before, part) + part.length;
      }
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
const HEADING = /^#{1,6} /;

function isHeading(part: string): boolean {
  return HEADING.test(part);
}

/**
 * What goes between two parts in a chunk's text: a space between sentences, a blank line around
 * a heading and after a fragment, so that reading the chunk again (the extractive answer splits
 * it) finds each heading on its own line and apart from the sentence after it, as in the document.
 */
function gap(before: string, after: string): number {
  return separator(before, after).length;
}

function separator(before: string, after: string): string {
  return isHeading(before) || isHeading(after) || !CLOSED.test(before) ? '\n\n' : ' ';
}

function joined(parts: string[]): string {
  let text = parts[0] ?? '';
  for (let i = 1; i < parts.length; i++) text += separator(parts[i - 1]!, parts[i]!) + parts[i];
  return text;
}

/** Length of the parts as {@link joined} joins them. */
function joinedLength(parts: string[]): number {
  let length = 0;
  parts.forEach((p, i) => (length += p.length + (i === 0 ? 0 : gap(parts[i - 1]!, p))));
  return length;
}

/** The trailing sentences that fit in `overlap` characters and still leave room for the next. */
function overlapOf(parts: string[], overlap: number, room: number): string[] {
  const kept: string[] = [];
  let length = 0;
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i] ?? '';
    const next = length === 0 ? part.length : length + gap(part, kept[0]!) + part.length;
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
