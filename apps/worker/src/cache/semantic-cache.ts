import { ChromaNotFoundError, type Collection, type Where } from 'chromadb';
import {
  cacheHash,
  normalizeQuestion,
  type CachedAnswer,
  type CacheEpoch,
  type CacheIdentity,
  type Logger,
} from '@askq/shared';
import { chromaClientFor } from '../knowledge/chroma-store.js';
import { sameSignals } from './signals.js';

/** Past questions by meaning: a near-identical question gets the stored answer. */
export interface SemanticCache {
  /** The best stored answer for a question this similar, in this epoch, with the same options. */
  lookup(
    identity: CacheIdentity,
    epoch: CacheEpoch,
    vector: number[],
  ): Promise<CachedAnswer | undefined>;
  store(
    identity: CacheIdentity,
    epoch: CacheEpoch,
    vector: number[],
    entry: CachedAnswer,
  ): Promise<void>;
}

/**
 * The semantic layer (SPEC 6) in Chroma: one collection of past questions per tenant and
 * collection, each with its answer as the document and its epoch and options as metadata, so a
 * lookup filters on them and a collection change (new version) or a cache clear (new generation)
 * retires every entry at once. A hit needs cosine similarity >= `threshold` and the same numbers
 * and negations. Failures here never fail a question: the cache is an optimisation.
 */
export function createSemanticCache(options: {
  url: string;
  prefix: string;
  threshold: number;
  ttlSeconds: number;
  timeoutMs: number;
  log: Logger;
}): SemanticCache {
  const client = chromaClientFor(options.url);
  const nameOf = (identity: CacheIdentity) =>
    `${options.prefix}.qcache.${identity.tenant}.${identity.collection}`;

  const timed = async <T>(work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('semantic cache timed out')),
            options.timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const filter = (identity: CacheIdentity, epoch: CacheEpoch): Where => ({
    $and: [
      { version: epoch.version },
      { generation: epoch.generation },
      { model: identity.model },
      { topK: identity.topK },
    ],
  });

  // Collections found, by name, so a lookup or a store is one HTTP call to Chroma instead of
  // two. One whose call fails is looked up afresh next time.
  const known = new Map<string, Collection>();
  // The version each collection was last cleaned up to, so the cleanup runs once per version.
  const cleaned = new Map<string, number>();

  return {
    async lookup(identity, epoch, vector) {
      const name = nameOf(identity);
      let collection = known.get(name);
      try {
        collection ??= await timed(client.getCollection({ name }));
        known.set(name, collection);
      } catch (e) {
        if (!(e instanceof ChromaNotFoundError)) {
          options.log.warn({ err: e }, 'semantic cache lookup failed');
        }
        return undefined;
      }
      try {
        const result = await timed(
          collection.query({
            queryEmbeddings: [vector],
            nResults: 5,
            where: filter(identity, epoch),
            include: ['documents', 'metadatas', 'distances'],
          }),
        );
        const oldest = Date.now() - options.ttlSeconds * 1_000;
        for (const row of result.rows()[0] ?? []) {
          const similarity = 1 - (row.distance ?? 1);
          const asked = typeof row.metadata?.question === 'string' ? row.metadata.question : '';
          if (similarity < options.threshold || !sameSignals(identity.question, asked)) continue;
          const entry = JSON.parse(row.document ?? 'null') as CachedAnswer | null;
          if (entry && entry.storedAt >= oldest) return entry;
        }
      } catch (e) {
        known.delete(name);
        options.log.warn({ err: e }, 'semantic cache lookup failed');
      }
      return undefined;
    },

    async store(identity, epoch, vector, entry) {
      const name = nameOf(identity);
      try {
        const collection =
          known.get(name) ??
          (await timed(
            client.getOrCreateCollection({
              name,
              embeddingFunction: null,
              configuration: { hnsw: { space: 'cosine' } },
            }),
          ));
        known.set(name, collection);
        await timed(
          collection.upsert({
            ids: [`${cacheHash(identity)}.${epoch.version}.${epoch.generation}`],
            embeddings: [vector],
            documents: [JSON.stringify(entry)],
            metadatas: [
              {
                ...epoch,
                model: identity.model,
                topK: identity.topK,
                question: normalizeQuestion(identity.question),
                storedAt: entry.storedAt,
              },
            ],
          }),
        );
        // Entries of older versions can never match again: drop them as the collection moves on,
        // off the answer's path, once per version and process.
        if (cleaned.get(name) !== epoch.version) {
          cleaned.set(name, epoch.version);
          void timed(collection.delete({ where: { version: { $lt: epoch.version } } })).catch(
            (e: unknown) => options.log.debug({ err: e }, 'semantic cache cleanup failed'),
          );
        }
      } catch (e) {
        known.delete(name);
        options.log.warn({ err: e }, 'semantic cache store failed');
      }
    },
  };
}
