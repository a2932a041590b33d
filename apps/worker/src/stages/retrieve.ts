import { AppError, type CollectionState, type Source } from '@askq/shared';
import type { Embedder } from '../embeddings/embedder.js';
import type { CollectionRef } from '../knowledge/chroma-store.js';
import type { KnowledgeStore } from '../knowledge/hybrid-store.js';
import { terms } from '../text/terms.js';

/** What retrieval looks for. */
export interface RetrievalInput extends CollectionRef {
  question: string;
  topK: number;
}

/**
 * Embeds the question for a collection; undefined when the collection does not exist or holds no
 * documents (there is nothing to find, so Chroma is not asked). A collection built by another
 * embedder is refused: comparing vectors of two embedders gives noise.
 */
export async function embedQuestion(
  input: RetrievalInput,
  state: CollectionState | undefined,
  deps: { embedder: Embedder },
  signal: AbortSignal,
): Promise<number[] | undefined> {
  if (!state || state.documents === 0) return undefined;
  const [vector] = await deps.embedder.embed([input.question], signal);
  signal.throwIfAborted();
  if (state.embedder !== deps.embedder.name || state.dimension !== vector?.length) {
    throw new AppError(
      'EMBEDDER_MISMATCH',
      `collection ${input.collection} holds ${state.embedder} vectors of dimension ${state.dimension}; this worker embeds with ${deps.embedder.name} (dimension ${vector?.length ?? 0})`,
    );
  }
  return vector;
}

/**
 * The topK chunks of the tenant's collection for the question: by its vector and by its words
 * (the question is bounded in length, so its terms are counted here, on the event loop).
 */
export function retrieve(
  input: RetrievalInput,
  vector: number[],
  deps: { store: KnowledgeStore },
): Promise<Source[]> {
  return deps.store.query(input, { embedding: vector, terms: terms(input.question) }, input.topK);
}
