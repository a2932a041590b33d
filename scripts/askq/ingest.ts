// `askq ingest <paths...>` (and `npm run ingest`): the .md/.txt files read by ingest-files.ts,
// sent by ingest-send.ts, with progress and a report of what went in and what did not.
import { isAbsolute, relative, resolve } from 'node:path';
import { toError } from '@askq/shared';
import { loadDocuments } from '../lib/ingest-files.js';
import {
  batchDocuments,
  ingest,
  IngestAbortedError,
  type IngestResult,
} from '../lib/ingest-send.js';
import { CliError, parseCommandLine, usageError } from './cli.js';
import { createIngestProgress, plural } from './display.js';
import { ENVIRONMENT, invocationCwd, loadTarget, startHint } from './target.js';

export const INGEST_USAGE = `Usage: npm run askq -- ingest [--collection NAME] <files or folders...>

Sends every .md and .txt file (folders are searched recursively) to askq, like "npm run ingest".
A document's id is its path under the folder you named, without the extension (for a file named
directly: its name), so ingesting the same files again replaces their chunks.

Options:
  -c, --collection NAME  collection to add to (default: the server's "default")
  -h, --help             show this help

Exit: 0 everything was ingested; 1 some file was unusable or failed (the rest still went in);
2 bad usage, or askq could not be reached or refused the key.

${ENVIRONMENT}`;

export async function ingestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(INGEST_USAGE, {
    args: argv,
    options: {
      collection: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(INGEST_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw usageError(INGEST_USAGE, 'name at least one file or folder');
  const collection = values.collection;
  if (collection !== undefined && collection.trim() === '') {
    throw usageError(INGEST_USAGE, '--collection is empty');
  }
  const target = loadTarget(INGEST_USAGE);
  const { url, apiKey } = target;
  const cwd = invocationCwd();
  const show = (path: string) => {
    const rel = relative(cwd, path);
    return rel.startsWith('..') || isAbsolute(rel) ? path : rel || '.';
  };

  const named = new Set(positionals.map((p) => resolve(cwd, p)));
  const { files, skipped, bad, docs, fileOf } = await loadDocuments([...named], show);

  let result: IngestResult = { ingested: [], failed: [] };
  if (docs.length > 0) {
    const requests = batchDocuments(docs, { collection }).length;
    console.log(
      `Sending ${plural(docs.length, 'document')} in ${plural(requests, 'request')} to ${url}`,
    );
    const progress = createIngestProgress();
    try {
      result = await ingest({ url, apiKey, collection, docs, onProgress: progress.update });
    } catch (e) {
      const err = toError(e);
      if (!(err instanceof IngestAbortedError)) throw err;
      const fix =
        err.reason === 'unauthorized'
          ? "Set ASKQ_API_KEY to a key from the server's API_KEYS."
          : startHint(target);
      throw new CliError(2, `${err.message}\n${fix}`, { cause: err });
    } finally {
      progress.stop();
    }
  }

  // Files inside a named folder that are not .md/.txt are expected; a named path that could not
  // be used is a mistake worth a failing exit code.
  const mistakes = skipped.filter((s) => named.has(s.path));
  const chunks = result.ingested.reduce((sum, d) => sum + d.chunks, 0);
  console.log(
    `\n${plural(result.ingested.length, 'file')} ingested (${plural(chunks, 'chunk')}) into collection "${collection ?? 'default'}"`,
  );
  if (files.length === 0 && skipped.length === 0) console.log('No .md or .txt files found.');
  const section = (title: string, lines: string[]) => {
    if (lines.length === 0) return;
    console.log(`${title} (${lines.length}):`);
    for (const line of lines) console.log(`  ${line}`);
  };
  section(
    'Skipped',
    skipped.map((s) => `${show(s.path)}: ${s.reason}`),
  );
  section(
    'Not sent',
    bad.map((b) => `${show(b.path)}: ${b.reason}`),
  );
  section(
    'Failed',
    result.failed.map((f) => {
      const file = fileOf.get(f.id);
      return `${f.id}${file ? ` (${show(file)})` : ''}: ${f.error}`;
    }),
  );
  const failed = mistakes.length > 0 || bad.length > 0 || result.failed.length > 0;
  return failed || files.length === 0 ? 1 : 0;
}
