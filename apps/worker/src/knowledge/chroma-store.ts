import { ChromaClient, ChromaNotFoundError, type Collection, type QueryResult } from 'chromadb';
import { AppError, withDeadline, type Source } from '@askq/shared';
import { cosine } from '../embeddings/cosine.js';
import type { TermCounts } from '../text/terms.js';
import { createBatcher } from './batcher.js';

/** One row of a Chroma query's result. */
export type QueryRow = ReturnType<QueryResult['rows']>[number][number];

/** Which tenant's collection an operation targets. */
export interface CollectionRef {
  tenant: string;
  collection: string;
}

/** One chunk of a document, ready to store. */
export interface ChunkRecord {
  id: string;
  documentId: string;
  title?: string;
  index: number;
  text: string;
  embedding: number[];
  metadata?: Record<string, string | number | boolean>;
  /** The chunk's index terms (computed with its chunking, off the event loop). */
  lexical?: { counts: TermCounts; length: number };
}

/** The vector store behind retrieval, one collection per tenant and collection name. */
export interface VectorStore {
  /** The topK most similar chunks; an unknown or empty collection gives no sources. */
  query(ref: CollectionRef, embedding: number[], topK: number): Promise<Source[]>;
  /** Chunks by id, scored by their similarity to `embedding`; unknown ids are left out. */
  get(ref: CollectionRef, ids: string[], embedding: number[]): Promise<Source[]>;
  /** Writes a document's chunks (ids are stable, so this replaces them in place). */
  upsert(ref: CollectionRef, embedder: string, chunks: ChunkRecord[]): Promise<void>;
  /** Removes a document's chunks from `fromIndex` on (0: the whole document). */
  deleteChunks(ref: CollectionRef, documentId: string, fromIndex: number): Promise<void>;
}

/**
 * A Chroma client for a server URL such as http://127.0.0.1:8000. With `timeoutMs`, every request
 * it makes, its body included, is bounded by a deadline, so a request to a hung server is aborted,
 * not left running after its caller gave up. The chromadb client takes no signal per call, but
 * its HTTP client (`apiClient`, shared with its collections) takes a `fetch` of its own, which is
 * wrapped here. Were that to change, requests would only go back to being bounded by their
 * callers' waits.
 */
export function chromaClientFor(
  serverUrl: string,
  options: { timeoutMs?: number } = {},
): ChromaClient {
  const url = new URL(serverUrl);
  const client = new ChromaClient({
    host: url.hostname,
    port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
    ssl: url.protocol === 'https:',
    // The client serialises bodies with a replacer (for BigInt) that JSON.stringify calls once per
    // number: 2,048 calls per query vector, 5% of a busy worker's CPU. askq sends no BigInt, so
    // plain JSON.stringify gives the same bytes. fetchOptions reach the client's request config
    // (chromadb 3); were that to change, bodies would only go back to the slower serialiser.
    fetchOptions: { bodySerializer: JSON.stringify } as RequestInit,
  });
  // Where the server takes base64, the client packs each vector into it byte by byte (one
  // function call per byte): 55 ms of the event loop per upsert of 100 vectors of 2,048
  // dimensions, during which no job lock is renewed and no question starts. Sent as plain JSON
  // arrays they cost 4 ms for the hash embedder's sparse vectors (30 ms for dense ones, still
  // less), and the server takes either.
  client.supportsBase64Encoding = () => Promise.resolve(false);
  const { timeoutMs } = options;
  const api = (client as unknown as { apiClient?: FetchConfig }).apiClient;
  const inner = api?.getConfig().fetch;
  if (timeoutMs !== undefined && api && inner) {
    api.setConfig({
      fetch: (request: Request) =>
        // The signal goes to fetch beside the request, not into a copy of it: a Request copied
        // from another follows its signal only weakly, and loses it at the next collection.
        withDeadline(timeoutMs, request.signal, async (signal) => {
          const response = await inner(request, { signal });
          // Read here so the deadline bounds the body too: the client reads it after fetch.
          const body = NULL_BODY_STATUSES.has(response.status)
            ? null
            : await response.arrayBuffer();
          return new Response(body, response);
        }),
    });
  }
  return client;
}

/** Statuses whose responses have no body (a Response made with one throws). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** The part of the chromadb client's HTTP client that the deadline wraps. */
interface FetchConfig {
  getConfig(): { fetch?: (request: Request, init?: RequestInit) => Promise<Response> };
  setConfig(config: { fetch: (request: Request) => Promise<Response> }): unknown;
}

/**
 * A Chroma-backed store. Names are `<prefix>.<tenant>.<collection>`: tenant and collection names
 * hold no dots, so names never collide, and deployments sharing a server stay apart by prefix.
 * Every call has its own timeout: the client has none and a hung server would hang the job.
 */
export function createChromaStore(options: {
  url: string;
  prefix: string;
  timeoutMs: number;
  /** Most queries sent to Chroma in one request. */
  maxBatch?: number;
  /** Called with the number of queries in each request, as it is sent. */
  onBatch?: (size: number) => void;
  /** Most chunks written in one request: a large document goes in several bounded ones. */
  writeBatch?: number;
}): VectorStore {
  // Each request is aborted after timeoutMs (the client has none, and a hung server would hang
  // the job).
  const client = chromaClientFor(options.url, { timeoutMs: options.timeoutMs });
  const nameOf = (ref: CollectionRef) => `${options.prefix}.${ref.tenant}.${ref.collection}`;

  /** Chroma's failures as askq's: retryable, with what was being done. */
  const timed = async <T>(what: string, work: Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work;
    } catch (e) {
      if (e instanceof AppError) throw e;
      // The chromadb client reports an aborted request as a failed connection, cause dropped.
      const late = performance.now() - started >= options.timeoutMs;
      const timedOut = late ? ` (no answer within ${options.timeoutMs} ms)` : '';
      throw new AppError('RETRIEVAL_FAILED', `the vector store failed during ${what}${timedOut}`, {
        cause: e,
        retryable: true,
      });
    }
  };

  // Collections found, by name: looking one up is an HTTP round trip of its own, which doubled
  // the cost of every query. Only found ones are kept (a missing one may be created any time);
  // one whose query fails is looked up afresh next time, in case it was dropped and recreated.
  const known = new Map<string, Collection>();
  const existing = async (ref: CollectionRef): Promise<Collection | undefined> => {
    const name = nameOf(ref);
    const cached = known.get(name);
    if (cached) return cached;
    try {
      const found = await client.getCollection({ name });
      known.set(name, found);
      return found;
    } catch (e) {
      if (e instanceof ChromaNotFoundError) return undefined;
      throw e;
    }
  };

  const toSource = (row: QueryRow): Source => {
    const meta = row.metadata ?? {};
    const source: Source = {
      documentId: typeof meta.documentId === 'string' ? meta.documentId : row.id,
      chunkId: row.id,
      text: row.document ?? '',
      // Cosine space: distance = 1 - cosine similarity; clients get the similarity.
      score: Number((1 - (row.distance ?? 1)).toFixed(6)),
    };
    if (typeof meta.title === 'string' && meta.title) source.title = meta.title;
    return source;
  };

  // Concurrent questions on one collection share one Chroma request (see batcher.ts).
  const batchedQuery = createBatcher<
    { collection: Collection; embedding: number[]; topK: number },
    Source[]
  >({
    maxBatch: options.maxBatch ?? 32,
    timeoutMs: options.timeoutMs,
    onBatch: options.onBatch,
    run: async (_key, items) => {
      const [first] = items;
      if (!first) return [];
      const result = await first.collection.query({
        queryEmbeddings: items.map((item) => item.embedding),
        nResults: first.topK,
        include: ['documents', 'metadatas', 'distances'],
      });
      const rows = result.rows();
      return items.map((_, i) => (rows[i] ?? []).map(toSource));
    },
  });

  /** Upserts chunks in requests of `size`, each with its own timeout. */
  const writeBatches = async (
    collection: Collection,
    chunks: Parameters<VectorStore['upsert']>[2],
    size: number,
  ) => {
    for (let i = 0; i < chunks.length; i += size) {
      const batch = chunks.slice(i, i + size);
      await timed(
        'upsert',
        collection.upsert({
          ids: batch.map((c) => c.id),
          embeddings: batch.map((c) => c.embedding),
          documents: batch.map((c) => c.text),
          metadatas: batch.map((c) => ({
            ...c.metadata,
            documentId: c.documentId,
            chunkIndex: c.index,
            ...(c.title ? { title: c.title } : {}),
          })),
        }),
      );
    }
  };

  return {
    query: (ref, embedding, topK) =>
      timed(
        'query',
        (async () => {
          const collection = await existing(ref);
          if (!collection) return [];
          return batchedQuery(`${topK}\n${nameOf(ref)}`, { collection, embedding, topK }).catch(
            (e: unknown) => {
              known.delete(nameOf(ref));
              throw e;
            },
          );
        })(),
      ),

    async upsert(ref, embedder, chunks) {
      if (chunks.length === 0) return;
      const name = nameOf(ref);
      const collection =
        known.get(name) ??
        (await timed(
          'upsert',
          client.getOrCreateCollection({
            name,
            embeddingFunction: null,
            configuration: { hnsw: { space: 'cosine' } },
            // Informational: the Redis collection registry is what refuses a mismatch.
            metadata: { embedder },
          }),
        ));
      known.set(name, collection);
      // Bounded requests, each with its own timeout: a large document is several of them. A
      // failed one drops the cached handle, in case the collection was dropped and recreated.
      const size = options.writeBatch ?? 100;
      try {
        await writeBatches(collection, chunks, size);
      } catch (e) {
        known.delete(name);
        throw e;
      }
    },

    get: (ref, ids, embedding) =>
      timed(
        'get',
        (async () => {
          const collection = ids.length > 0 ? await existing(ref) : undefined;
          if (!collection) return [];
          const result = await collection.get({
            ids,
            include: ['documents', 'metadatas', 'embeddings'],
          });
          return result
            .rows()
            .map((row) =>
              toSource({ ...row, distance: 1 - cosine(embedding, row.embedding ?? []) }),
            );
        })(),
      ),

    deleteChunks: (ref, documentId, fromIndex) =>
      timed(
        'delete',
        (async () => {
          const collection = await existing(ref);
          if (!collection) return;
          await collection.delete({
            where:
              fromIndex === 0
                ? { documentId }
                : { $and: [{ documentId }, { chunkIndex: { $gte: fromIndex } }] },
          });
        })(),
      ),
  };
}
