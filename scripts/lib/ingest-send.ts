// Sends documents to askq: POST /v1/documents in size-limited batches, then each ingestion
// followed (GET /v1/ingestions/{id}) until the worker has chunked and embedded it. The files are
// found and read by ingest-files.ts. Reads no env and never exits: the CLI does that.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { withoutTrailingSlashes } from './base-url.js';
import { apiErrorOf, requestJson, UnreachableError, type JsonReply } from './http.js';
import type { Doc } from './ingest-files.js';

/** The server's limit on documents in one POST /v1/documents (SPEC 2). */
export const MAX_DOCUMENTS_PER_REQUEST = 100;

/** Progress over all batches of one `ingest()` call; totals grow as the worker chunks batches. */
export interface IngestProgress {
  chunksDone: number;
  chunksTotal: number;
  documentsDone: number;
  documentsTotal: number;
}

/** Options of `ingest()`. */
export interface IngestOptions {
  /** Base URL of the API, without `/v1`. */
  url: string;
  apiKey?: string;
  collection?: string;
  docs: Doc[];
  onProgress?: (progress: IngestProgress) => void;
  /** Milliseconds between two looks at a running ingestion. */
  pollMs?: number;
  fetch?: typeof fetch;
}

/** What `ingest()` achieved, per document. */
export interface IngestResult {
  ingested: Array<{ id: string; chunks: number }>;
  failed: Array<{ id: string; error: string }>;
}

/** Ingesting cannot go on at all: the server is unreachable, refuses the key, or is not askq. */
export class IngestAbortedError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'unauthorized' | 'not-found',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IngestAbortedError';
  }
}

/** Splits documents into request-sized groups: at most `maxDocs` each, bodies under `maxBytes`. */
export function batchDocuments(
  docs: Doc[],
  options: { maxDocs?: number; maxBytes?: number; collection?: string } = {},
): Doc[][] {
  const { maxDocs = MAX_DOCUMENTS_PER_REQUEST, maxBytes = 900 * 1024, collection } = options;
  // JSON.stringify of an array is "[" + items joined by "," + "]", so sizes add up exactly.
  const emptyBytes = Buffer.byteLength(JSON.stringify({ collection, documents: [] }));
  const batches: Doc[][] = [];
  let current: Doc[] = [];
  let bytes = emptyBytes;
  for (const doc of docs) {
    const docBytes = Buffer.byteLength(JSON.stringify(doc));
    // A document too big on its own still goes, alone: the server has the last word on it.
    if (current.length > 0 && (current.length >= maxDocs || bytes + 1 + docBytes > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = emptyBytes;
    }
    bytes += docBytes + (current.length > 0 ? 1 : 0); // the comma before every item but the first
    current.push(doc);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

const Accepted = z.object({ ingestionId: z.string().min(1) });

const DocumentError = z.union([
  z.string(),
  z.object({ code: z.string(), message: z.string() }).transform((e) => `${e.code}: ${e.message}`),
]);

const IngestionView = z.object({
  status: z.enum(['queued', 'active', 'completed', 'failed']),
  documents: z.array(
    z.object({
      id: z.string(),
      chunks: z.number().int().nonnegative().optional(),
      error: DocumentError.optional(),
    }),
  ),
  chunksDone: z.number().nonnegative().optional(),
  chunksTotal: z.number().nonnegative().optional(),
});
type IngestionView = z.infer<typeof IngestionView>;

const MAX_RETRIES = 5;
const REQUEST_TIMEOUT_MS = 30_000;

interface Batch {
  docs: Doc[];
  ingestionId?: string;
  view?: IngestionView;
  /** Consecutive looks at the ingestion that gave no usable answer. */
  badPolls: number;
  done: boolean;
}

/** Sends the documents in batches and follows each ingestion to its end, reporting progress. */
export async function ingest(options: IngestOptions): Promise<IngestResult> {
  const { docs, collection, onProgress, pollMs = 200 } = options;
  const baseUrl = withoutTrailingSlashes(options.url);
  const headers: Record<string, string> = {};
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const result: IngestResult = { ingested: [], failed: [] };
  // Until the server has answered once, a connection error means a wrong URL or a stopped
  // server: say so at once instead of retrying for seconds.
  let reached = false;

  const send = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonReply> => {
    try {
      const reply = await requestJson(baseUrl + path, {
        method,
        headers,
        body,
        retries: MAX_RETRIES,
        retryNetworkErrors: reached,
        timeoutMs: REQUEST_TIMEOUT_MS,
        fetch: options.fetch,
      });
      reached = true;
      return reply;
    } catch (e) {
      if (!(e instanceof UnreachableError)) throw e;
      throw new IngestAbortedError('unreachable', `cannot reach ${baseUrl}: ${e.reason}`, {
        cause: e,
      });
    }
  };

  const fail = (batch: Batch, error: string) => {
    for (const doc of batch.docs) result.failed.push({ id: doc.id, error });
    batch.done = true;
  };

  const report = () => {
    if (!onProgress) return;
    let chunksDone = 0;
    let chunksTotal = 0;
    let documentsDone = 0;
    for (const batch of batches) {
      chunksDone += batch.view?.chunksDone ?? 0;
      chunksTotal += batch.view?.chunksTotal ?? 0;
      if (batch.done) documentsDone += batch.docs.length;
    }
    onProgress({ chunksDone, chunksTotal, documentsDone, documentsTotal: docs.length });
  };

  const batches: Batch[] = batchDocuments(docs, { collection }).map((group) => ({
    docs: group,
    badPolls: 0,
    done: false,
  }));

  for (const batch of batches) {
    const reply = await send('POST', '/v1/documents', { collection, documents: batch.docs });
    if (reply.status === 202) {
      const accepted = Accepted.safeParse(reply.json);
      if (accepted.success) batch.ingestionId = accepted.data.ingestionId;
      else fail(batch, `unexpected answer to POST /v1/documents: ${JSON.stringify(reply.json)}`);
    } else if (reply.status === 401 || reply.status === 403) {
      throw new IngestAbortedError(
        'unauthorized',
        `${baseUrl} refused the API key: ${errorMessage(reply)}`,
      );
    } else if (reply.status === 404) {
      throw new IngestAbortedError('not-found', `${baseUrl} has no /v1/documents: is it askq?`);
    } else {
      fail(batch, errorMessage(reply));
    }
    report();
  }

  const poll = async (batch: Batch): Promise<void> => {
    const reply = await send(
      'GET',
      `/v1/ingestions/${encodeURIComponent(batch.ingestionId ?? '')}`,
    );
    if (reply.status === 404) return fail(batch, 'ingestion not found: it may have expired');
    const view = reply.status === 200 ? IngestionView.safeParse(reply.json) : undefined;
    if (!view?.success) {
      // One odd answer is not the end of an ingestion the worker may still be running.
      if (++batch.badPolls > MAX_RETRIES) {
        fail(batch, `could not follow the ingestion: ${errorMessage(reply)}`);
      }
      return;
    }
    batch.badPolls = 0;
    batch.view = view.data;
    if (view.data.status !== 'completed' && view.data.status !== 'failed') return;
    const byId = new Map(view.data.documents.map((d) => [d.id, d]));
    for (const doc of batch.docs) {
      const seen = byId.get(doc.id);
      if (seen?.error) result.failed.push({ id: doc.id, error: seen.error });
      else if (!seen) result.failed.push({ id: doc.id, error: 'missing from the ingestion' });
      else if (view.data.status === 'failed')
        result.failed.push({ id: doc.id, error: 'ingestion failed' });
      else result.ingested.push({ id: doc.id, chunks: seen.chunks ?? 0 });
    }
    batch.done = true;
  };

  for (;;) {
    const pending = batches.filter((b) => !b.done);
    if (pending.length === 0) break;
    await Promise.all(pending.map(poll));
    report();
    if (batches.some((b) => !b.done)) await sleep(pollMs);
  }
  return result;
}

/** The server's `code: message (path: problem; ...)`, or the bare status when it sent no error body. */
function errorMessage(reply: JsonReply): string {
  const error = apiErrorOf(reply.json);
  if (!error) return `HTTP ${reply.status}`;
  const { code, message, details } = error;
  return `${code}: ${message}${details.length > 0 ? ` (${details.join('; ')})` : ''}`;
}
