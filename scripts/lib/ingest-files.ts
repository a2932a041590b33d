// The document ingester behind `npm run ingest`: finds .md/.txt files, turns them into SPEC 2
// documents, sends them to POST /v1/documents in size-limited batches and follows each ingestion
// until the worker has chunked and embedded it. Reads no env and never exits: the CLI does that.
import { constants } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { toError } from '@askq/shared';
import { withoutTrailingSlashes } from './base-url.js';
import { networkReason, parseJson, retryAfterMs } from './http.js';

/** A document as the ingester sends it: SPEC 2's document with its id and title always set. */
export interface Doc {
  id: string;
  title: string;
  text: string;
}

/** A path that was not ingested, and why. */
export interface Skipped {
  path: string;
  reason: string;
}

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

/** The server's limit on one POST /v1/documents body (SPEC 2). */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** The server's limit on documents in one POST /v1/documents (SPEC 2). */
export const MAX_DOCUMENTS_PER_REQUEST = 100;
/** The longest document id the server accepts (SPEC 2). */
export const MAX_ID_LENGTH = 256;

const EXTENSIONS = new Set(['.md', '.txt']);
// Folders that hold tooling, not documents; walking them would list thousands of skipped files.
const isIgnoredFolder = (name: string) => name.startsWith('.') || name === 'node_modules';

/**
 * Finds the .md/.txt files under the given files and folders (absolute, sorted) and reports what it
 * passed over; `roots` maps each file to the folder its id is relative to (see `readDocument`).
 */
export async function collectFiles(
  paths: string[],
): Promise<{ files: string[]; skipped: Skipped[]; roots: Map<string, string> }> {
  const roots = new Map<string, string>();
  const skipped: Skipped[] = [];

  const visit = async (path: string, root: string | undefined): Promise<void> => {
    let info;
    try {
      info = await stat(path);
    } catch (e) {
      const code = (toError(e) as NodeJS.ErrnoException).code;
      // A dangling symlink inside a folder is as missing as a mistyped argument.
      skipped.push({ path, reason: code === 'ENOENT' ? 'not found' : `cannot read (${code})` });
      return;
    }
    if (info.isDirectory()) {
      if (root !== undefined && isIgnoredFolder(basename(path))) {
        skipped.push({ path, reason: 'folder not searched (hidden or node_modules)' });
        return;
      }
      let entries;
      try {
        entries = await readdir(path, { withFileTypes: true });
      } catch (e) {
        skipped.push({
          path,
          reason: `cannot list (${(toError(e) as NodeJS.ErrnoException).code})`,
        });
        return;
      }
      for (const entry of entries) {
        const child = resolve(path, entry.name);
        if (entry.isSymbolicLink()) {
          // A link may point anywhere (~/.ssh, /dev/zero): only what stays in the folder named
          // is read. Symlinked folders can loop back on themselves; name them to include them.
          const target = await realpath(child).catch(() => undefined);
          if (target === undefined || !isInside(target, await realpath(root ?? path))) {
            skipped.push({ path: child, reason: 'symbolic link out of the folder (not followed)' });
            continue;
          }
          if ((await stat(child).catch(() => undefined))?.isDirectory()) {
            skipped.push({ path: child, reason: 'symbolic link to a folder (not followed)' });
            continue;
          }
        }
        await visit(child, root ?? path);
      }
    } else if (!info.isFile()) {
      skipped.push({ path, reason: 'not a regular file' });
    } else if (EXTENSIONS.has(extname(path).toLowerCase())) {
      // A file reached twice (its folder and itself named) keeps the id of its first mention.
      if (!roots.has(path)) roots.set(path, root ?? dirname(path));
    } else {
      skipped.push({ path, reason: 'not a .md or .txt file' });
    }
  };

  for (const path of paths) await visit(resolve(path), undefined);
  // Code-unit order, not locale order: the same on every machine.
  const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    files: [...roots.keys()].sort(byPath),
    skipped: skipped.sort((a, b) => byPath(a.path, b.path)),
    roots,
  };
}

/** Whether `path` is `folder` or lies under it (both resolved). */
function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/**
 * The file's bytes, at most `cap` + 1 of them, or why it is not read. The checks are made on the
 * opened descriptor, not on the path: a file swapped for a FIFO, a device or a huge file between
 * the search and the read is still refused (O_NONBLOCK: opening a FIFO does not wait for a
 * writer). The size is not trusted either: at most `cap` + 1 bytes are read, whatever it says.
 */
async function readCapped(file: string, cap: number): Promise<Buffer | string> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) return 'not a regular file';
    if (info.size > cap) return 'larger than 1 MiB (too big for one request)';
    const buffer = Buffer.alloc(cap + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > cap) return 'larger than 1 MiB (too big for one request)';
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

/** Reads one file as a document whose id is its path under `root`; or says why it cannot be sent. */
export async function readDocument(
  file: string,
  root: string,
): Promise<{ doc?: Doc; problem?: string }> {
  const bytes = await readCapped(file, MAX_REQUEST_BYTES);
  if (typeof bytes === 'string') return { problem: bytes };
  // Text has no NUL byte; a file with one is binary (an image or archive named .md, say).
  if (bytes.includes(0)) return { problem: 'binary (holds NUL bytes)' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { problem: 'not valid UTF-8 text' };
  }
  if (text.trim() === '') return { problem: 'empty' };

  const ext = extname(file);
  const rel = relative(root, file);
  const id = rel
    .slice(0, rel.length - ext.length)
    .split(sep)
    .join('/')
    .replace(/[\s#]/g, '-');
  if (id === '' || id.startsWith('../')) return { problem: `not inside ${root}` };
  if (id.length > MAX_ID_LENGTH) return { problem: `id "${id}" is longer than 256 characters` };

  const name = basename(file, ext);
  const title = (ext.toLowerCase() === '.md' ? firstHeading(text) : undefined) ?? name;
  const doc: Doc = { id, title, text };
  // JSON escapes quotes, backslashes and control characters, so a file just under 1 MiB can
  // still make a body over the limit; keep 1 KiB spare for the collection name.
  if (Buffer.byteLength(JSON.stringify({ documents: [doc] })) > MAX_REQUEST_BYTES - 1024) {
    return { problem: 'too big for one request once encoded as JSON' };
  }
  return { doc };
}

/** What `loadDocuments()` found: the documents to send and every path left out, with why. */
export interface LoadedDocuments {
  /** The .md/.txt files found, sorted. */
  files: string[];
  docs: Doc[];
  /** Paths passed over while searching (not .md/.txt, missing, hidden folders...). */
  skipped: Skipped[];
  /** Files found but not usable as documents (empty, not UTF-8, too big, an id taken twice). */
  bad: Skipped[];
  /** The file each document was read from, by id. */
  fileOf: Map<string, string>;
}

/**
 * Reads the .md/.txt files under the given files and folders as `askq ingest` sends them: each
 * id is the file's path under the folder named (see `readDocument`), and a file whose id an
 * earlier file already has is left out. `show` renders a path in messages.
 */
export async function loadDocuments(
  paths: string[],
  show: (path: string) => string = (path) => path,
): Promise<LoadedDocuments> {
  const { files, skipped, roots } = await collectFiles(paths);
  const bad: Skipped[] = [];
  const docs: Doc[] = [];
  const fileOf = new Map<string, string>();
  for (const file of files) {
    const { doc, problem } = await readDocument(file, roots.get(file) ?? dirname(file)).catch(
      (e: unknown) => ({ doc: undefined, problem: `cannot read: ${toError(e).message}` }),
    );
    const twin = doc && fileOf.get(doc.id);
    if (problem !== undefined || !doc) bad.push({ path: file, reason: problem ?? 'unreadable' });
    // Two files with one id would overwrite each other's chunks on the server.
    else if (twin) bad.push({ path: file, reason: `same id "${doc.id}" as ${show(twin)}` });
    else {
      docs.push(doc);
      fileOf.set(doc.id, file);
    }
  }
  return { files, docs, skipped, bad, fileOf };
}

/** The text of the first level-1 ATX heading outside code fences, if any. */
function firstHeading(markdown: string): string | undefined {
  let fence: string | undefined;
  for (const line of markdown.split(/\r?\n/)) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker) {
      if (!fence) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (fence) continue;
    const heading = levelOneHeading(line);
    if (heading) return heading;
  }
  return undefined;
}

/**
 * The text of a level-1 ATX heading line ("# Title", "  # Title #"), or undefined. Walked by hand:
 * the obvious /^ {0,3}# +(.*?)(?: +#+)? *$/ backtracks quadratically on a long run of spaces.
 */
export function levelOneHeading(line: string): string | undefined {
  let i = 0;
  while (i < 3 && line.charCodeAt(i) === 0x20) i++;
  if (line.charCodeAt(i) !== 0x23 || line.charCodeAt(i + 1) !== 0x20) return undefined;
  let text = line.slice(i + 2).trim();
  // An optional closing run of '#', which counts only after a space (or as the whole text).
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x23) end--;
  if (end < text.length && (end === 0 || text.charCodeAt(end - 1) === 0x20)) {
    text = text.slice(0, end).trimEnd();
  }
  return text === '' ? undefined : text;
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

const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
const ErrorDetail = z.object({
  path: z.union([z.string(), z.array(z.union([z.string(), z.number()]))]),
  message: z.string(),
});

// 429 and 503 come with Retry-After (SPEC 2, 7); 502/504 are proxies in front of a restarting API.
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const MAX_RETRIES = 5;
const REQUEST_TIMEOUT_MS = 30_000;

interface Reply {
  status: number;
  json: unknown;
}

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
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const result: IngestResult = { ingested: [], failed: [] };
  // Until the server has answered once, a connection error means a wrong URL or a stopped
  // server: say so at once instead of retrying for seconds.
  let reached = false;

  const send = async (method: 'GET' | 'POST', path: string, body?: string): Promise<Reply> => {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      let text: string;
      try {
        response = await doFetch(baseUrl + path, {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        text = await response.text();
      } catch (e) {
        const err = toError(e);
        if (!reached || attempt >= MAX_RETRIES) {
          throw new IngestAbortedError(
            'unreachable',
            `cannot reach ${baseUrl}: ${networkReason(err)}`,
            { cause: err },
          );
        }
        await sleep(250 * 2 ** attempt);
        continue;
      }
      reached = true;
      if (RETRY_STATUSES.has(response.status) && attempt < MAX_RETRIES) {
        await sleep(retryAfterMs(response.headers.get('retry-after'), attempt));
        continue;
      }
      return { status: response.status, json: parseJson(text) };
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
    const reply = await send(
      'POST',
      '/v1/documents',
      JSON.stringify({ collection, documents: batch.docs }),
    );
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
function errorMessage(reply: Reply): string {
  const parsed = ErrorBody.safeParse(reply.json);
  if (!parsed.success) return `HTTP ${reply.status}`;
  const { code, message, details } = parsed.data.error;
  const problems = (Array.isArray(details) ? details : []).flatMap((d) => {
    const detail = ErrorDetail.safeParse(d);
    if (!detail.success) return [];
    const path = Array.isArray(detail.data.path) ? detail.data.path.join('.') : detail.data.path;
    return [`${path}: ${detail.data.message}`];
  });
  return `${code}: ${message}${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`;
}
