import {
  AppError,
  type CollectionRegistry,
  type IngestionDocument,
  type IngestJobDocument,
  type Logger,
} from '@askq/shared';
import type { Embedder } from '../embeddings/embedder.js';
import type { CollectionRef, KnowledgeStore } from './chroma-store.js';
import type { Chunk } from './chunker.js';

/** Clients the ingestion steps use. */
export interface IngestDeps {
  store: KnowledgeStore;
  embedder: Embedder;
  registry: CollectionRegistry;
  chunk: (documentId: string, text: string) => Chunk[];
  log: Logger;
}

/** Progress after each document, for `GET /v1/ingestions/{id}`. */
export interface IngestProgress {
  documents: IngestionDocument[];
  chunksDone: number;
  chunksTotal: number;
}

/**
 * Chunks, embeds and stores documents, one at a time, reporting progress after each. A failure
 * that another attempt may cure (an embeddings or Chroma outage) is thrown so the job retries;
 * re-running is safe because chunk ids are stable and each change carries its sequence number.
 * A document the embeddings server rejects is reported on its own and the others go on.
 */
export async function upsertDocuments(
  ref: CollectionRef,
  documents: IngestJobDocument[],
  deps: IngestDeps,
  onProgress: (progress: IngestProgress) => Promise<void>,
): Promise<IngestProgress> {
  const chunked = documents.map((doc) => ({ doc, chunks: deps.chunk(doc.id, doc.text) }));
  const progress: IngestProgress = {
    documents: chunked.map(({ doc, chunks }) => ({ id: doc.id, chunks: chunks.length })),
    chunksDone: 0,
    chunksTotal: chunked.reduce((sum, c) => sum + c.chunks.length, 0),
  };
  await onProgress(progress);

  for (const [i, { doc, chunks }] of chunked.entries()) {
    const outcome = progress.documents[i]!;
    let vectors: number[][];
    try {
      vectors = await deps.embedder.embed(chunks.map((c) => c.text));
    } catch (e) {
      if (e instanceof AppError && !e.retryable) {
        outcome.error = e.message;
        await onProgress(progress);
        continue;
      }
      throw e;
    }
    await refuseOtherEmbedder(ref, deps, vectors[0]?.length ?? deps.embedder.dimension);

    await deps.registry.withLock(ref.tenant, ref.collection, async () => {
      const before = await deps.registry.document(ref.tenant, ref.collection, doc.id);
      // A later change to this document was applied already (ingestions can finish out of order).
      if (before && before.seq > doc.seq) return;
      await deps.store.upsert(
        ref,
        deps.embedder.name,
        chunks.map((c, j) => ({
          ...c,
          documentId: doc.id,
          embedding: vectors[j] ?? [],
          ...(doc.title ? { title: doc.title } : {}),
          ...(doc.metadata ? { metadata: doc.metadata } : {}),
        })),
      );
      // The new version may be shorter: drop the old chunks past its end.
      if (before && !before.deleted && before.chunks > chunks.length) {
        await deps.store.deleteChunks(ref, doc.id, chunks.length);
      }
      await deps.registry.applyDocument(ref.tenant, ref.collection, doc.id, doc.seq, chunks.length);
    });
    progress.chunksDone += chunks.length;
    await onProgress(progress);
  }
  return progress;
}

/** Removes documents' chunks and records their deletion (in sequence, like upserts). */
export async function deleteDocuments(
  ref: CollectionRef,
  documents: Array<{ id: string; seq: number }>,
  deps: Pick<IngestDeps, 'store' | 'registry'>,
): Promise<IngestionDocument[]> {
  const outcomes: IngestionDocument[] = [];
  for (const doc of documents) {
    // `chunks` reports how many chunks the deletion removed.
    const removed = await deps.registry.withLock(ref.tenant, ref.collection, async () => {
      const before = await deps.registry.document(ref.tenant, ref.collection, doc.id);
      if (before && before.seq > doc.seq) return 0;
      await deps.store.deleteChunks(ref, doc.id, 0);
      await deps.registry.applyDocument(ref.tenant, ref.collection, doc.id, doc.seq, null);
      return before && !before.deleted ? before.chunks : 0;
    });
    outcomes.push({ id: doc.id, chunks: removed });
  }
  return outcomes;
}

/** Vectors of two embedders in one collection would be silent garbage: refuse instead. */
async function refuseOtherEmbedder(
  ref: CollectionRef,
  deps: Pick<IngestDeps, 'registry' | 'embedder'>,
  dimension: number,
): Promise<void> {
  const owner = await deps.registry.claim(ref.tenant, ref.collection, {
    name: deps.embedder.name,
    dimension,
  });
  if (owner.embedder !== deps.embedder.name || owner.dimension !== dimension) {
    throw new AppError(
      'EMBEDDER_MISMATCH',
      `collection ${ref.collection} holds ${owner.embedder} vectors of dimension ${owner.dimension}; this worker embeds with ${deps.embedder.name} (dimension ${dimension})`,
    );
  }
}
