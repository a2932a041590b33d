// `askq eval` and `npm run eval` share this: options checked, files read, the run, its table on
// stdout and its JSON summary. Reads no env and never exits: the callers do that.
import { writeFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { loadDocuments, type Doc } from '../ingest-files.js';
import { LabelledFileError, loadLabelledFile, type LabelledQuestion } from './labelled.js';
import { RECALL_DEPTH } from './metrics.js';
import { formatTable } from './report.js';
import { EvalAbortedError, runEval, type EvalOptions, type EvalSummary } from './run.js';

/** The options of both commands, for `util.parseArgs`. */
export const EVAL_OPTIONS = {
  file: { type: 'string', short: 'f' },
  corpus: { type: 'string', multiple: true },
  collection: { type: 'string', short: 'c' },
  concurrency: { type: 'string' },
  'top-k': { type: 'string', short: 'k' },
  model: { type: 'string', short: 'm' },
  cache: { type: 'boolean' },
  json: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The values `util.parseArgs` gives for EVAL_OPTIONS. */
export interface EvalValues {
  file?: string;
  corpus?: string[];
  collection?: string;
  concurrency?: string;
  'top-k'?: string;
  model?: string;
  cache?: boolean;
  json?: string;
}

/** Ends the command with exit code 2; `usage` says the usage text should follow the message. */
export class EvalCommandError extends Error {
  constructor(
    readonly usage: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EvalCommandError';
  }
}

/** A checked command line with its files read: what a run needs besides where askq is. */
export interface PreparedEval {
  questions: LabelledQuestion[];
  /** The corpus read as `askq ingest` reads it (same files, same ids); undefined without --corpus. */
  corpus?: Doc[];
  options: Pick<EvalOptions, 'collection' | 'topK' | 'cache' | 'model' | 'concurrency'>;
  /** Where the JSON summary goes: a path, or '-' for stdout. */
  json?: string;
}

const usage = (message: string) => new EvalCommandError(true, message);

function wholeNumber(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) throw usage(`--${name} must be a whole number ${min}-${max}`);
  return n;
}

/** Checks the options and reads the labelled file and the corpus; paths are from `cwd`. */
export async function prepareEval(
  values: EvalValues,
  positionals: string[],
  cwd: string,
): Promise<PreparedEval> {
  if (positionals.length > 0) throw usage(`unexpected argument "${positionals[0]}"`);
  if (values.file === undefined || values.file === '') {
    throw usage('give the labelled file with --file');
  }
  if (values.collection !== undefined && values.collection.trim() === '') {
    throw usage('--collection is empty');
  }
  if (values.json === '') throw usage('--json needs a file name, or - for stdout');
  const model = values.model;
  if (model !== undefined && model !== 'auto' && model !== 'fast' && model !== 'smart') {
    throw usage(`--model must be auto, fast or smart, not "${model}"`);
  }
  const options: PreparedEval['options'] = {
    collection: values.collection,
    topK: wholeNumber('top-k', values['top-k'], 1, 20) ?? RECALL_DEPTH,
    cache: values.cache === true,
    model,
    // askq admits 50 questions in flight per tenant (TENANT_MAX_INFLIGHT).
    concurrency: wholeNumber('concurrency', values.concurrency, 1, 50) ?? 4,
  };

  const show = (path: string) => {
    const rel = relative(cwd, path);
    return rel.startsWith('..') || isAbsolute(rel) ? path : rel || '.';
  };
  let questions: LabelledQuestion[];
  try {
    questions = await loadLabelledFile(resolve(cwd, values.file), values.file);
  } catch (e) {
    if (!(e instanceof LabelledFileError)) throw e;
    throw new EvalCommandError(false, e.message, { cause: e });
  }

  let corpus: Doc[] | undefined;
  if (values.corpus && values.corpus.length > 0) {
    const named = values.corpus.map((p) => resolve(cwd, p));
    const loaded = await loadDocuments(named, show);
    const missing = loaded.skipped.filter((s) => named.includes(s.path));
    if (missing.length > 0) {
      throw usage(`--corpus ${missing.map((s) => `${show(s.path)}: ${s.reason}`).join('; ')}`);
    }
    if (loaded.docs.length === 0) {
      throw usage(`--corpus ${values.corpus.join(' ')} holds no usable .md or .txt file`);
    }
    // `askq ingest` did not send these either, so they are not in the collection.
    for (const bad of loaded.bad) {
      process.stderr.write(`corpus: left out ${show(bad.path)}: ${bad.reason}\n`);
    }
    corpus = loaded.docs;
  }
  return { questions, corpus, options, json: values.json };
}

/** Where askq is, and what to tell a user who cannot reach it or whose key it refuses. */
export interface EvalTarget {
  url: string;
  apiKey?: string;
  cwd: string;
  /** By default, `askq eval`'s: they name ASKQ_URL and ASKQ_API_KEY. */
  hints?: { unreachable?: string; unauthorized?: string };
  signal?: AbortSignal;
}

/** `askq eval`: checks the command line, reads the files, runs; resolves with the exit code. */
export async function evaluate(
  values: EvalValues,
  positionals: string[],
  target: EvalTarget,
): Promise<number> {
  const prepared = await prepareEval(values, positionals, target.cwd);
  const hints = target.hints ?? {
    unreachable: `Start askq (npm start) or set ASKQ_URL to where it runs (now ${target.url}).`,
    unauthorized: "Set ASKQ_API_KEY to one of the server's API_KEYS.",
  };
  return (await runEvalCommand(prepared, { ...target, hints })).exitCode;
}

/**
 * Runs the evaluation, prints the table (on stderr when the JSON goes to stdout) and writes the
 * JSON summary. Exit code 0 when every question was answered, 1 when some were not.
 */
export async function runEvalCommand(
  prepared: PreparedEval,
  target: EvalTarget,
): Promise<{ exitCode: number; summary: EvalSummary }> {
  const { questions, corpus, options, json } = prepared;
  const progress = process.stderr.isTTY
    ? (done: number, total: number) => process.stderr.write(`\r\x1b[2Kasked ${done}/${total}`)
    : undefined;
  let summary: EvalSummary;
  try {
    summary = await runEval({
      ...options,
      url: target.url,
      apiKey: target.apiKey,
      questions,
      corpus,
      onStart: (c) =>
        process.stderr.write(
          `asking ${questions.length} questions of "${c.name}" (embedder ${c.embedder}), ${options.concurrency} at a time, at ${target.url}\n`,
        ),
      onProgress: progress,
      signal: target.signal,
    });
  } catch (e) {
    if (!(e instanceof EvalAbortedError)) throw e;
    const hint =
      e.reason === 'unreachable'
        ? target.hints?.unreachable
        : e.reason === 'unauthorized'
          ? target.hints?.unauthorized
          : undefined;
    throw new EvalCommandError(false, hint ? `${e.message}\n${hint}` : e.message, { cause: e });
  } finally {
    if (progress) process.stderr.write('\r\x1b[2K');
  }

  const table = `${formatTable(summary)}\n`;
  if (json === '-') {
    process.stderr.write(table);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    process.stdout.write(table);
    if (json !== undefined) {
      await writeFile(resolve(target.cwd, json), `${JSON.stringify(summary, null, 2)}\n`);
      process.stderr.write(`JSON summary written to ${json}\n`);
    }
  }
  return { exitCode: summary.askq.unanswered > 0 ? 1 : 0, summary };
}
