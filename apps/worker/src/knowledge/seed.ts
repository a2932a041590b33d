import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { CollectionRef } from './chroma-store.js';
import { upsertDocuments, type IngestDeps } from './ingest.js';

/** A document read from disk. */
export interface FileDocument {
  id: string;
  title: string;
  text: string;
}

/** Reads every .md and .txt file below a folder; the id is the file name without extension. */
export async function readDocuments(dir: string): Promise<FileDocument[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && ['.md', '.txt'].includes(extname(e.name)))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(file, 'utf8');
      const id = basename(file, extname(file));
      const heading = text
        .split(/\r?\n/)
        .find((line) => /^#[ \t]/.test(line))
        ?.slice(2)
        .trim();
      return { id, title: heading ?? id, text };
    }),
  );
}

/**
 * Loads documents into a collection that has none, through the same steps as an ingestion job,
 * so a fresh `npm start` has something to answer from. Returns the chunks written.
 */
export async function seedCollection(
  ref: CollectionRef,
  documents: FileDocument[],
  deps: IngestDeps,
): Promise<number> {
  const state = await deps.registry.describe(ref.tenant, ref.collection);
  if (state && state.documents > 0) return 0;
  const first = await deps.registry.reserveSeqs(ref.tenant, ref.collection, documents.length);
  const progress = await upsertDocuments(
    ref,
    documents.map((doc, i) => ({ ...doc, seq: first + i })),
    deps,
    () => Promise.resolve(),
  );
  return progress.chunksDone;
}
