import { z } from 'zod';
import { AppError } from './errors.js';
import { NamePattern } from './question.js';

/** BullMQ queue that carries one job per ingestion (or document deletion). */
export const INGEST_QUEUE = 'ingest';

/** Document ids: no whitespace (they travel in URLs and logs) and no '#' (it separates chunk ids). */
export const DocumentId = z
  .string()
  .regex(/^[^\s#]{1,256}$/, '1-256 characters without whitespace or "#"');

/** Metadata keys askq writes itself; user metadata may not shadow them. */
export const RESERVED_METADATA_KEYS: ReadonlySet<string> = new Set([
  'documentId',
  'chunkIndex',
  'title',
]);

const MetadataValue = z.union([z.string(), z.number(), z.boolean()]);

/** One document of `POST /v1/documents`. */
export const DocumentInput = z.strictObject({
  id: DocumentId.optional(),
  text: z.string().refine((t) => t.trim().length > 0, 'must not be empty'),
  title: z.string().max(512).optional(),
  metadata: z
    .record(z.string().min(1).max(128), MetadataValue)
    .refine((m) => Object.keys(m).every((k) => !RESERVED_METADATA_KEYS.has(k)), {
      message: `keys ${[...RESERVED_METADATA_KEYS].join(', ')} are reserved`,
    })
    .optional(),
});
export type DocumentInput = z.infer<typeof DocumentInput>;

/** Body of `POST /v1/documents` (SPEC 2): at most 100 documents (and 1 MiB, checked by the parser). */
export const IngestRequest = z
  .strictObject({
    collection: z
      .string()
      .regex(NamePattern, 'letters, digits, "_" and "-", at most 64, alphanumeric at both ends')
      .default('default'),
    documents: z.array(DocumentInput).min(1).max(100),
  })
  .superRefine((body, ctx) => {
    const seen = new Set<string>();
    body.documents.forEach((doc, i) => {
      if (doc.id === undefined) return;
      if (seen.has(doc.id)) {
        ctx.addIssue({ code: 'custom', path: ['documents', i, 'id'], message: 'duplicate id' });
      }
      seen.add(doc.id);
    });
  });
export type IngestRequest = z.infer<typeof IngestRequest>;

/** The size limits of documents (SPEC 7), from the configuration every process shares. */
export interface DocumentLimits {
  chunkSize: number;
  chunkOverlap: number;
  maxChunksPerDocument: number;
  maxChunksPerRequest: number;
  maxMetadataBytes: number;
  maxMetadataKeys: number;
}

/** The limits a configuration sets. */
export function documentLimits(config: {
  CHUNK_SIZE: number;
  CHUNK_OVERLAP: number;
  MAX_CHUNKS_PER_DOCUMENT: number;
  MAX_CHUNKS_PER_REQUEST: number;
  MAX_METADATA_BYTES: number;
  MAX_METADATA_KEYS: number;
}): DocumentLimits {
  return {
    chunkSize: config.CHUNK_SIZE,
    chunkOverlap: config.CHUNK_OVERLAP,
    maxChunksPerDocument: config.MAX_CHUNKS_PER_DOCUMENT,
    maxChunksPerRequest: config.MAX_CHUNKS_PER_REQUEST,
    maxMetadataBytes: config.MAX_METADATA_BYTES,
    maxMetadataKeys: config.MAX_METADATA_KEYS,
  };
}

/**
 * The chunks a text of this length makes at `chunkSize` characters a chunk, each after the first
 * starting `chunkOverlap` characters before the end of the last: what a user can work out before
 * sending. The sentence-aware chunker's real count differs a little; the worker checks that one.
 */
export function estimatedChunks(length: number, limits: DocumentLimits): number {
  if (length <= limits.chunkSize) return 1;
  return 1 + Math.ceil((length - limits.chunkSize) / (limits.chunkSize - limits.chunkOverlap));
}

/**
 * Refuses documents past the limits, listing every problem with its field path: too many metadata
 * keys is 400 INVALID_REQUEST; metadata too large, or too many chunks (per document, or for the
 * whole request) is 413 PAYLOAD_TOO_LARGE. Metadata is copied into every chunk of its document,
 * so its size multiplies: it is bounded on its own.
 */
export function checkDocumentLimits(request: IngestRequest, limits: DocumentLimits): void {
  const invalid: Array<{ path: string; message: string }> = [];
  const tooLarge: Array<{ path: string; message: string }> = [];
  let total = 0;
  request.documents.forEach((doc, i) => {
    if (doc.metadata) {
      const keys = Object.keys(doc.metadata).length;
      if (keys > limits.maxMetadataKeys) {
        invalid.push({
          path: `documents.${i}.metadata`,
          message: `${keys} keys, at most ${limits.maxMetadataKeys} (MAX_METADATA_KEYS)`,
        });
      }
      const bytes = Buffer.byteLength(JSON.stringify(doc.metadata));
      if (bytes > limits.maxMetadataBytes) {
        tooLarge.push({
          path: `documents.${i}.metadata`,
          message: `${bytes} bytes as JSON, at most ${limits.maxMetadataBytes} (MAX_METADATA_BYTES)`,
        });
      }
    }
    const chunks = estimatedChunks(doc.text.length, limits);
    total += chunks;
    if (chunks > limits.maxChunksPerDocument) {
      tooLarge.push({
        path: `documents.${i}.text`,
        message: `about ${chunks} chunks of ${limits.chunkSize} characters, at most ${limits.maxChunksPerDocument} (MAX_CHUNKS_PER_DOCUMENT)`,
      });
    }
  });
  if (total > limits.maxChunksPerRequest) {
    tooLarge.push({
      path: 'documents',
      message: `about ${total} chunks in all, at most ${limits.maxChunksPerRequest} per request (MAX_CHUNKS_PER_REQUEST): send them in several requests`,
    });
  }
  if (tooLarge.length > 0) {
    throw new AppError('PAYLOAD_TOO_LARGE', 'the documents exceed the size limits', {
      details: [...invalid, ...tooLarge],
    });
  }
  if (invalid.length > 0) {
    throw new AppError('INVALID_REQUEST', 'the request body is invalid', { details: invalid });
  }
}

/** A document in an ingestion job; `seq` orders changes to the same document. */
export const IngestJobDocument = z.object({
  id: DocumentId,
  text: z.string(),
  title: z.string().optional(),
  metadata: z.record(z.string(), MetadataValue).optional(),
  seq: z.number().int().nonnegative(),
});
export type IngestJobDocument = z.infer<typeof IngestJobDocument>;

/** Payload of an ingest job: upsert documents, or delete some by id. */
export const IngestJob = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('upsert'),
    ingestionId: z.string(),
    tenant: z.string(),
    collection: z.string(),
    /** The embedder the API expected, so a worker configured otherwise refuses instead of mixing. */
    embedder: z.string(),
    documents: z.array(IngestJobDocument),
  }),
  z.object({
    op: z.literal('delete'),
    ingestionId: z.string(),
    tenant: z.string(),
    collection: z.string(),
    embedder: z.string(),
    documents: z.array(z.object({ id: DocumentId, seq: z.number().int().nonnegative() })),
  }),
]);
export type IngestJob = z.infer<typeof IngestJob>;

/** Lifecycle of an ingestion. */
export type IngestionStatus = 'queued' | 'active' | 'completed' | 'failed';

/** One document's outcome in an ingestion. */
export interface IngestionDocument {
  id: string;
  chunks: number;
  error?: string;
}

/** `GET /v1/ingestions/{id}` (SPEC 2). */
export interface IngestionView {
  id: string;
  status: IngestionStatus;
  operation: 'upsert' | 'delete';
  collection: string;
  documents: IngestionDocument[];
  chunksDone: number;
  chunksTotal: number;
  createdAt: string;
  finishedAt?: string;
  error?: { code: string; message: string };
}

/** One entry of `GET /v1/collections` (SPEC 2). */
export interface CollectionView {
  name: string;
  documents: number;
  chunks: number;
  version: number;
  embedder: string;
  dimension: number;
}

/** The embedder name a configuration implies: `hash`, or `openai:<model>` for the HTTP client. */
export function embedderName(config: {
  EMBEDDINGS_BASE_URL?: string | undefined;
  EMBEDDINGS_MODEL: string;
}): string {
  return config.EMBEDDINGS_BASE_URL ? `openai:${config.EMBEDDINGS_MODEL}` : 'hash';
}

/** Turns a stored ingestion (HGETALL) into its public view; undefined when it does not exist. */
export function toIngestionView(
  id: string,
  hash: Readonly<Record<string, string | undefined>>,
): IngestionView | undefined {
  if (!hash.status || !hash.collection) return undefined;
  const view: IngestionView = {
    id,
    status: hash.status as IngestionStatus,
    operation: hash.operation === 'delete' ? 'delete' : 'upsert',
    collection: hash.collection,
    documents: JSON.parse(hash.documents ?? '[]') as IngestionDocument[],
    chunksDone: Number(hash.chunksDone ?? 0),
    chunksTotal: Number(hash.chunksTotal ?? 0),
    createdAt: new Date(Number(hash.createdAt)).toISOString(),
  };
  if (hash.finishedAt) view.finishedAt = new Date(Number(hash.finishedAt)).toISOString();
  if (hash.error) view.error = JSON.parse(hash.error) as { code: string; message: string };
  return view;
}
