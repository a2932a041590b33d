import type { Source, Validation } from '@askq/shared';
import { hashEmbed } from '../embeddings/hash-embedder.js';
import { createChunker, type Chunk, type ChunkerOptions } from '../knowledge/chunker.js';
import { extract } from '../llm/extractive.js';
import { validateAnswer, type ValidateInput } from '../stages/validate.js';

/**
 * The CPU-bound work askq does on text users wrote. The worker runs it on a pool of threads
 * ({@link createContentPool}); every call may reject with `CONTENT_TOO_COMPLEX` when it runs past
 * its time budget, or with the signal's reason when it is aborted.
 */
export interface ContentWork {
  chunk(documentId: string, text: string, signal?: AbortSignal): Promise<Chunk[]>;
  embedHash(texts: string[], dimension: number, signal?: AbortSignal): Promise<number[][]>;
  validate(input: ValidateInput, signal?: AbortSignal): Promise<Validation>;
  extract(
    question: string,
    sources: Source[],
    maxSentences: number,
    signal?: AbortSignal,
  ): Promise<string>;
}

/**
 * The same work on the calling thread, without budgets: for unit tests and tools that process
 * trusted text. A service must not use it on user content.
 */
export function inlineContentWork(options: ChunkerOptions): ContentWork {
  const chunker = createChunker(options);
  const now = <T>(work: () => T, signal?: AbortSignal): Promise<T> =>
    new Promise((resolve) => {
      signal?.throwIfAborted();
      resolve(work());
    });
  return {
    chunk: (documentId, text, signal) => now(() => chunker(documentId, text), signal),
    embedHash: (texts, dimension, signal) => now(() => hashEmbed(texts, dimension), signal),
    validate: (input, signal) => now(() => validateAnswer(input), signal),
    extract: (question, sources, maxSentences, signal) =>
      now(() => extract(question, sources, maxSentences), signal),
  };
}
