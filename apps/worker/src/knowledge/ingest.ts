import {
  AppError,
  type CollectionRegistry,
  type IngestionDocument,
  type IngestJobDocument,
  type Logger,
} from '@askq/shared';
import type { Embedder } from '../embeddings/embedder.js';
import type { CollectionRef } from './chroma-store.js';
import type { KnowledgeStore } from './hybrid-store.js';
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
  /** Chunks per Chroma write (CHROMA_WRITE_BATCH): documents are stored in groups of about this. */
  writeBatch?: number;
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
 * Chunks, embeds and stores documents, in groups of about one Chroma write, reporting progress
 * after each group. A failure
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

  // Documents go to Chroma in groups of about one write batch of chunks: one embedding call, one
  // lock, one registry read and one upsert request per group instead of per document (Chroma's
  // cost per request dominates small documents). The next group is embedded while one is written.
  const groups = groupDocuments(
    documents.flatMap((doc, i) => (progress.documents[i]!.error ? [] : [i])),
    (i) => chunked[i]!.length,
    deps.writeBatch ?? 100,
  );
  // A document too complex to process ends the ingestion, but only once the groups before it
  // are stored: the next group is embedded early, and its verdict waits for its turn.
  const embedGroup = async (group: number[]) => {
    const vectors = await embedTogether(group, (i) => chunked[i]!, deps.embedder);
    const ready: Array<{ i: number; vectors: number[][] }> = [];
    for (const [k, i] of group.entries()) {
      const result = vectors[k]!;
      if (result instanceof AppError && result.code === 'CONTENT_TOO_COMPLEX') {
        return { ready, tooComplex: { i, error: result } };
      }
      if (result instanceof AppError) progress.documents[i]!.error = result.message;
      else ready.push({ i, vectors: result });
    }
    return { ready };
  };
  let claimed = false;
  let next = groups[0] ? embedGroup(groups[0]) : undefined;
  next?.catch(() => undefined);
  for (let g = 0; g < groups.length; g++) {
    const { ready, tooComplex: refused } = await next!;
    next = groups[g + 1] && !refused ? embedGroup(groups[g + 1]!) : undefined;
    next?.catch(() => undefined);
    if (ready.length > 0 && !claimed) {
      await refuseOtherEmbedder(ref, deps, ready[0]!.vectors[0]?.length ?? deps.embedder.dimension);
      claimed = true;
    }
    if (ready.length > 0) await storeGroup(ref, ready, documents, chunked, deps);
    for (const { i } of ready) {
      stored.add(i);
      progress.chunksDone += chunked[i]!.length;
    }
    if (refused) tooComplex(refused.i, refused.error);
    await onProgress(progress);
  }
  return progress;
}

/**
 * Consecutive documents in groups of at most `size` chunks (a larger document is a group alone;
 * the store splits its write into batches).
 */
function groupDocuments(
  indexes: number[],
  chunks: (i: number) => number,
  size: number,
): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let count = 0;
  for (const i of indexes) {
    if (current.length > 0 && count + chunks(i) > size) {
      groups.push(current);
      current = [];
      count = 0;
    }
    current.push(i);
    count += chunks(i);
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * The vectors of each document's chunks, in one embedding call for the group. A document the
 * embedder refuses (a final, not a passing, error) is found by embedding the group's documents
 * one by one, and gets its error in place of vectors; a passing error is thrown (the job retries).
 */
async function embedTogether(
  group: number[],
  chunksOf: (i: number) => Chunk[],
  embedder: Embedder,
): Promise<Array<number[][] | AppError>> {
  const final = (e: unknown): e is AppError => e instanceof AppError && !e.retryable;
  try {
    const vectors = await embedder.embed(group.flatMap((i) => chunksOf(i).map((c) => c.text)));
    let at = 0;
    return group.map((i) => vectors.slice(at, (at += chunksOf(i).length)));
  } catch (e) {
    if (!final(e) || group.length === 1) {
      if (final(e)) return [e];
      throw e;
    }
  }
  const each: Array<number[][] | AppError> = [];
  for (const i of group) {
    each.push(
      await embedder.embed(chunksOf(i).map((c) => c.text)).catch((e: unknown) => {
        if (final(e)) return e;
        throw e;
      }),
    );
  }
  return each;
}

/**
 * Writes a group's chunks under the collection's lock: documents a later change has overtaken
 * are skipped (ingestions can finish out of order), the others are upserted in one write, the
 * old chunks past a shortened document's end are dropped, and every document's new state is
 * recorded, in one round trip.
 */
async function storeGroup(
  ref: CollectionRef,
  ready: Array<{ i: number; vectors: number[][] }>,
  documents: IngestJobDocument[],
  chunked: Chunk[][],
  deps: IngestDeps,
): Promise<void> {
  await deps.registry.withLock(ref.tenant, ref.collection, async () => {
    const before = await deps.registry.documents(
      ref.tenant,
      ref.collection,
      ready.map(({ i }) => documents[i]!.id),
    );
    const current = ready.filter(({ i }, k) => !(before[k] && before[k].seq > documents[i]!.seq));
    await deps.store.upsert(
      ref,
      deps.embedder.name,
      current.flatMap(({ i, vectors }) => {
        const doc = documents[i]!;
        return chunked[i]!.map((c, j) => ({
          ...c,
          documentId: doc.id,
          embedding: vectors[j] ?? [],
          ...(doc.title ? { title: doc.title } : {}),
          ...(doc.metadata ? { metadata: doc.metadata } : {}),
        }));
      }),
    );
    await Promise.all(
      current.map(async ({ i }) => {
        const doc = documents[i]!;
        const previous = before[ready.findIndex((r) => r.i === i)];
        // The new version may be shorter: drop the old chunks past its end.
        if (previous && !previous.deleted && previous.chunks > chunked[i]!.length) {
          await deps.store.deleteChunks(ref, doc.id, chunked[i]!.length);
        }
        await deps.registry.applyDocument(
          ref.tenant,
          ref.collection,
          doc.id,
          doc.seq,
          chunked[i]!.length,
        );
      }),
    );
  });
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
