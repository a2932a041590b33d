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
  /** Chunks a document (on a content thread, under its time budget). */
  chunk: (documentId: string, text: string) => Promise<Chunk[]>;
  /** Most chunks one document may make (MAX_CHUNKS_PER_DOCUMENT). */
  maxChunksPerDocument: number;
  log: Logger;
}

/** Progress after each document, for `GET /v1/ingestions/{id}`. */
export interface IngestProgress {
  documents: IngestionDocument[];
  chunksDone: number;
  chunksTotal: number;
}

/** Thrown when a document is too complex to process: the whole ingestion ends with it. */
export class ContentTooComplexError extends AppError {
  constructor(
    readonly progress: IngestProgress,
    cause: AppError,
  ) {
    super('CONTENT_TOO_COMPLEX', cause.message, { cause });
    this.name = 'ContentTooComplexError';
  }
}

/**
 * Chunks, embeds and stores documents, one at a time, reporting progress after each. A failure
 * that another attempt may cure (an embeddings or Chroma outage) is thrown so the job retries;
 * re-running is safe because chunk ids are stable and each change carries its sequence number.
 * A document the embeddings server rejects, or one with too many chunks, is reported on its own
 * and the others go on. A document whose processing runs past its time budget ends the ingestion
 * (ContentTooComplexError): the next ones could cost as much again, and it is not retried. The
 * documents stored before it stay; the others are reported "not processed".
 */
export async function upsertDocuments(
  ref: CollectionRef,
  documents: IngestJobDocument[],
  deps: IngestDeps,
  onProgress: (progress: IngestProgress) => Promise<void>,
): Promise<IngestProgress> {
  const progress: IngestProgress = {
    documents: documents.map((doc) => ({ id: doc.id, chunks: 0 })),
    chunksDone: 0,
    chunksTotal: 0,
  };
  // Documents whose chunks are in the store: all are chunked before any is stored.
  const stored = new Set<number>();
  const tooComplex = (i: number, e: AppError): never => {
    progress.documents.forEach((outcome, j) => {
      if (j === i) {
        outcome.error = `${e.code}: ${e.message}`;
      } else if (!stored.has(j) && !outcome.error) {
        outcome.error = 'not processed: another document of this ingestion was too complex';
      }
      if (!stored.has(j)) outcome.chunks = 0;
    });
    progress.chunksTotal = progress.chunksDone;
    throw new ContentTooComplexError(progress, e);
  };
  // All documents are chunked first, so progress knows the total from the start.
  const chunked: Chunk[][] = [];
  for (const [i, doc] of documents.entries()) {
    const chunks = await deps.chunk(doc.id, doc.text).catch((e: unknown) => {
      if (e instanceof AppError && e.code === 'CONTENT_TOO_COMPLEX') return tooComplex(i, e);
      throw e;
    });
    const outcome = progress.documents[i]!;
    if (chunks.length > deps.maxChunksPerDocument) {
      outcome.error = `TOO_MANY_CHUNKS: ${chunks.length} chunks, at most ${deps.maxChunksPerDocument} (MAX_CHUNKS_PER_DOCUMENT)`;
      chunked.push([]);
      continue;
    }
    outcome.chunks = chunks.length;
    progress.chunksTotal += chunks.length;
    chunked.push(chunks);
  }
  await onProgress(progress);

  for (const [i, doc] of documents.entries()) {
    const outcome = progress.documents[i]!;
    const chunks = chunked[i]!;
    if (outcome.error) continue;
    let vectors: number[][];
    try {
      vectors = await deps.embedder.embed(chunks.map((c) => c.text));
    } catch (e) {
      if (e instanceof AppError && e.code === 'CONTENT_TOO_COMPLEX') tooComplex(i, e);
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
    stored.add(i);
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
