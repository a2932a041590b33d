import { toError, type Logger, type Source } from '@askq/shared';
import { termCounts } from '../text/terms.js';
import type { ChunkRecord, CollectionRef, VectorStore } from './chroma-store.js';
import type { LexicalIndex } from './lexical-index.js';

/** What retrieval searches with: the question's vector and its index terms. */
export interface Probe {
  embedding: number[];
  terms: string[];
}

/** The store behind retrieval: chunks by meaning (vectors) and by their words (BM25), fused. */
export interface KnowledgeStore {
  /** The topK best chunks; an unknown or empty collection gives no sources. */
  query(ref: CollectionRef, probe: Probe, topK: number): Promise<Source[]>;
  /** Writes a document's chunks (ids are stable, so this replaces them in place). */
  upsert(ref: CollectionRef, embedder: string, chunks: ChunkRecord[]): Promise<void>;
  /** Removes a document's chunks from `fromIndex` on (0: the whole document). */
  deleteChunks(ref: CollectionRef, documentId: string, fromIndex: number): Promise<void>;
}

/** A ranking's candidates with their scores, best first. */
export interface Scored {
  id: string;
  score: number;
}

/**
 * Score fusion: each ranking's scores divided by its best (BM25 and a cosine below 0 both count
 * from 0, their least possible value), weighted, and summed; a candidate a ranking did not return
 * gets 0 from it. Cosine similarities and BM25 scores have no common scale, and this needs none.
 * A convex combination of scores so normalised is what Bruch et al. (2023) found best among
 * fusion functions; min-max over the candidates was tried first and does as well on large pools,
 * but with few candidates (a small collection) it stretches any difference to 0 versus 1, so a
 * passage that barely wins one side ties one that clearly wins the other. Ties keep the first
 * ranking's order.
 */
export function fuseScores(rankings: Array<{ scored: Scored[]; weight: number }>): string[] {
  const fused = new Map<string, { score: number; order: number }>();
  let order = 0;
  for (const { scored, weight } of rankings) {
    if (weight === 0 || scored.length === 0) continue;
    const high = Math.max(...scored.map((s) => s.score));
    for (const { id, score } of scored) {
      const seen = fused.get(id) ?? { score: 0, order: order++ };
      seen.score += weight * (high > 0 ? Math.max(0, score) / high : 0);
      fused.set(id, seen);
    }
  }
  return [...fused]
    .sort(([, a], [, b]) => b.score - a.score || a.order - b.order)
    .map(([id]) => id);
}

/**
 * Hybrid retrieval: the vector store's nearest chunks and the lexical index's BM25 ranking of
 * the same collection, each a pool of candidates, their scores fused. Writes go to both.
 * Chunks only the lexical side found are read from the vector store, so every source has its
 * text and its similarity. A lexical side that fails leaves the vector ranking alone.
 */
export function createHybridStore(options: {
  vectors: VectorStore;
  lexical: LexicalIndex;
  log: Logger;
  /** The lexical ranking's share of the fused score, 0..1 (0: vectors only). Default 0.4. */
  lexicalWeight?: number;
  /** Candidates each side ranks for a question asking for topK (default: 4 x topK, >= 20). */
  poolSize?: (topK: number) => number;
}): KnowledgeStore {
  const { vectors, lexical, log } = options;
  const lexicalWeight = options.lexicalWeight ?? 0.4;
  const poolOf = options.poolSize ?? ((topK: number) => Math.min(100, Math.max(20, topK * 4)));

  return {
    async query(ref, probe, topK) {
      const pool = poolOf(topK);
      const [dense, words] = await Promise.all([
        vectors.query(ref, probe.embedding, pool),
        lexicalWeight === 0
          ? []
          : lexical.search(ref, probe.terms, pool).catch((e: unknown) => {
              log.warn({ err: toError(e), ...ref }, 'lexical search failed: vector ranking only');
              return [];
            }),
      ]);
      const best = fuseScores([
        {
          scored: dense.map((s) => ({ id: s.chunkId, score: s.score })),
          weight: 1 - lexicalWeight,
        },
        { scored: words.map((h) => ({ id: h.chunkId, score: h.score })), weight: lexicalWeight },
      ]).slice(0, topK * 2);
      const found = new Map(dense.map((s) => [s.chunkId, s]));
      const missing = best.filter((id) => !found.has(id));
      for (const source of await vectors.get(ref, missing, probe.embedding)) {
        found.set(source.chunkId, source);
      }
      // A chunk the lexical index still lists but the vector store no longer has is left out,
      // and the next candidate takes its place (twice topK were looked at).
      return best.flatMap((id) => found.get(id) ?? []).slice(0, topK);
    },

    async upsert(ref, embedder, chunks) {
      await vectors.upsert(ref, embedder, chunks);
      await lexical.index(
        ref,
        chunks.map((chunk) => {
          const own = chunk.lexical ?? termCounts(chunk.text);
          if (!chunk.title) return { id: chunk.id, ...own };
          // The title is part of every chunk's words: "Ocean tides" names what each one is about.
          const title = termCounts(chunk.title);
          const counts = new Map(own.counts);
          for (const [term, count] of title.counts)
            counts.set(term, (counts.get(term) ?? 0) + count);
          return { id: chunk.id, counts: [...counts], length: own.length + title.length };
        }),
      );
    },

    async deleteChunks(ref, documentId, fromIndex) {
      await vectors.deleteChunks(ref, documentId, fromIndex);
      await lexical.deleteChunks(ref, documentId, fromIndex);
    },
  };
}
