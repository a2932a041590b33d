// The document reader behind `askq ingest` and `npm run ingest`: finds .md/.txt files and turns
// them into SPEC 2 documents; ingest-send.ts sends them. Reads no env and never exits: the CLI
// does that.
import { constants } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { toError } from '@askq/shared';

// Sending moved to ingest-send.ts; importable from here as before.
export {
  batchDocuments,
  ingest,
  IngestAbortedError,
  MAX_DOCUMENTS_PER_REQUEST,
  type IngestOptions,
  type IngestProgress,
  type IngestResult,
} from './ingest-send.js';

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

/** The server's limit on one POST /v1/documents body (SPEC 2). */
export const MAX_REQUEST_BYTES = 1024 * 1024;
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

/**
 * Opens a file for reading without following a link out of `root`: the path is opened with
 * O_NOFOLLOW, and a link (ELOOP) only through its target, when that lies inside `root`. So a file
 * swapped for a link to ~/.ssh between the search and the read is refused, not sent.
 */
async function openInside(file: string, root: string) {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
  try {
    return await open(file, flags);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOOP') throw e;
    const target = await realpath(file);
    if (!isInside(target, await realpath(root))) return 'symbolic link out of the folder';
    return open(target, flags);
  }
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
async function readCapped(file: string, root: string, cap: number): Promise<Buffer | string> {
  const handle = await openInside(file, root);
  if (typeof handle === 'string') return handle;
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
  const bytes = await readCapped(file, root, MAX_REQUEST_BYTES);
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
