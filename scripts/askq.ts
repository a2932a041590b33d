// `npm run askq -- <ask|status|ingest|eval> ...`: the command-line client of a running askq (issue 9).
// Exit codes: 0 done; 1 the question failed or was cancelled (ask), or a file was not ingested
// (ingest); 2 bad usage, askq unreachable, or a request refused (4xx) or failed (5xx); 130 Ctrl-C.
import { isAbsolute, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { withoutTrailingSlashes } from './lib/base-url.js';
import { networkReason, parseJson } from './lib/http.js';
import {
  toError,
  type EventDataMap,
  type QuestionResult,
  type QuestionView,
  type Source,
  type StageName,
} from '@askq/shared';
import {
  EventStreamError,
  followEvents,
  type StreamEvent,
  type StreamOutcome,
} from './lib/event-stream.js';
import { EVAL_OPTIONS, EvalCommandError, evaluate } from './lib/eval/command.js';
import {
  batchDocuments,
  ingest,
  IngestAbortedError,
  loadDocuments,
  type IngestProgress,
} from './lib/ingest-files.js';

const ENVIRONMENT = `Environment:
  ASKQ_URL      askq API base URL (default http://localhost:3000)
  ASKQ_API_KEY  sent as "Authorization: Bearer <key>" when set`;

const USAGE = `Usage: npm run askq -- <command> [options]

Commands:
  ask "question"     ask a question: stage progress, the answer as it streams, its sources
  status <id>        a question's status, stage, attempts, timings and answer or error
  ingest <paths...>  send .md/.txt files (folders searched recursively) to a collection
  eval --file F      measure answer quality on labelled questions, beside a BM25 baseline

"npm run askq -- <command> --help" shows a command's options.

${ENVIRONMENT}`;

const ASK_USAGE = `Usage: npm run askq -- ask "question" [options]

Asks askq, shows the stages with their timings on stderr, streams the answer to stdout, then
lists its sources (stdout) and a summary (stderr). A dropped connection is resumed where it broke.

Options:
  -c, --collection NAME  collection to search (default: the server's "default")
  -m, --model MODEL      auto (default), fast or smart
  -k, --top-k N          passages to retrieve, 1-20 (default 4)
      --no-cache         neither answer from nor join earlier questions
      --json             print {id, status, result | error} as JSON on stdout instead
      --cancel-on-exit   on Ctrl-C, cancel the question (by default it runs on)
  -h, --help             show this help

Exit: 0 answered; 1 the question failed or was cancelled; 2 bad usage, askq unreachable, or the
request refused; 130 Ctrl-C.

${ENVIRONMENT}`;

const STATUS_USAGE = `Usage: npm run askq -- status <id> [--json]

Shows a question's status, stage, attempts, timings, and its answer or error.

Options:
      --json  print the question as the API returns it
  -h, --help  show this help

Exit: 0 when the question was found, whatever its status (a failed question too: read the
status line, or "status" in --json); 2 when it does not exist (or expired, or belongs to another
key's tenant), askq is unreachable or refuses the key.

${ENVIRONMENT}`;

const INGEST_USAGE = `Usage: npm run askq -- ingest [--collection NAME] <files or folders...>

Sends every .md and .txt file (folders are searched recursively) to askq, like "npm run ingest".
A document's id is its path under the folder you named, without the extension (for a file named
directly: its name), so ingesting the same files again replaces their chunks.

Options:
  -c, --collection NAME  collection to add to (default: the server's "default")
  -h, --help             show this help

Exit: 0 everything was ingested; 1 some file was unusable or failed (the rest still went in);
2 bad usage, or askq could not be reached or refused the key.

${ENVIRONMENT}`;

const EVAL_USAGE = `Usage: npm run askq -- eval --file labelled.json [--corpus DIR] [options]

Asks each labelled question ({question, documentId, fact?}: a JSON array or JSON Lines) and
prints recall@1, recall@4, MRR, fact and validation rates, beside BM25 over the corpus.

Options:
  -f, --file FILE        the labelled questions
      --corpus PATH      the files or folders you ingested (repeatable), for the BM25 baseline
  -c, --collection NAME  collection to ask (default: the server's "default")
      --concurrency N    questions in flight, 1-50 (default 4)
  -k, --top-k N          passages per question, 1-20 (default 4)
  -m, --model MODEL      auto (default), fast or smart
      --cache            let answers come from the caches (default: every one answered anew)
      --json FILE        also write the summary as JSON to FILE ("-": stdout, the table on stderr)
  -h, --help             show this help

Exit: 0 every question answered; 1 some were not (they count as misses); 2 bad usage or a bad
labelled file, askq unreachable, the key refused, or the collection missing.

${ENVIRONMENT}`;

/** Ends the command with this exit code after printing the message on stderr. */
class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

const usageError = (usage: string, message: string) => new CliError(2, `${message}\n\n${usage}`);

/** parseArgs' own messages name the unknown option or the missing value. */
function parse<T extends Parameters<typeof parseArgs>[0]>(usage: string, config: T) {
  try {
    return parseArgs({ ...config, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(usage, toError(e).message);
  }
}

interface Target {
  url: string;
  apiKey: string | undefined;
  headers: Record<string, string>;
}

function loadTarget(usage: string): Target {
  const url = withoutTrailingSlashes(process.env.ASKQ_URL || 'http://localhost:3000');
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw usageError(usage, `ASKQ_URL is not an http(s) URL: ${url}`);
  }
  const apiKey = process.env.ASKQ_API_KEY || undefined;
  return { url, apiKey, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} };
}

const unreachable = (target: Target, reason: string, cause?: unknown) =>
  new CliError(
    2,
    `cannot reach askq at ${target.url}: ${reason}\nStart askq (npm start) or set ASKQ_URL to where it runs (now ${target.url}).`,
    { cause },
  );

interface Reply {
  status: number;
  json: unknown;
}

// 429 and 503 come with Retry-After (SPEC 2, 7): worth a few patient tries before giving up.
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const MAX_REQUEST_RETRIES = 3;
const REQUEST_TIMEOUT_MS = 30_000;

/** One JSON request to the API; a connection error is a CliError naming ASKQ_URL. */
async function request(
  target: Target,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json', ...target.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    let text: string;
    try {
      response = await fetch(target.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (e) {
      throw unreachable(target, networkReason(toError(e)), e);
    }
    if (RETRY_STATUSES.has(response.status) && attempt < MAX_REQUEST_RETRIES) {
      const seconds = Number(response.headers.get('retry-after'));
      const waitMs = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 10) * 1000 : 500;
      await new Promise((done) => setTimeout(done, waitMs * (attempt + 1)));
      continue;
    }
    return { status: response.status, json: parseJson(text) };
  }
}

/** A refused or failed request as a CliError: the API's `code: message` and every detail path. */
function apiError(target: Target, reply: Reply, what: string): CliError {
  const error = (reply.json as { error?: { code?: unknown; message?: unknown; details?: unknown } })
    ?.error;
  let text =
    typeof error?.code === 'string'
      ? `${error.code}: ${String(error.message)}`
      : `HTTP ${reply.status}${reply.json === undefined ? '' : ` ${JSON.stringify(reply.json)}`}`;
  if (Array.isArray(error?.details)) {
    for (const detail of error.details as Array<{ path?: unknown; message?: unknown }>) {
      const path =
        typeof detail.path === 'string'
          ? detail.path
          : Array.isArray(detail.path)
            ? detail.path.join('.')
            : JSON.stringify(detail.path);
      text += `\n  ${path}: ${String(detail.message)}`;
    }
  }
  if (reply.status === 401 || reply.status === 403) {
    const fix = target.apiKey
      ? "ASKQ_API_KEY is not one of the server's API_KEYS."
      : "askq requires a key: set ASKQ_API_KEY to one of the server's API_KEYS.";
    return new CliError(2, `${what} was refused: ${text}\n${fix}`);
  }
  return new CliError(2, `${what} answered ${reply.status}: ${text}`);
}

// ---------------------------------------------------------------------------------------------
// ask

const STAGES: readonly StageName[] = ['retrieval', 'generation', 'validation'];

interface StageState {
  state: 'started' | 'completed' | 'failed';
  ms?: number;
  startedAt: number;
}

/**
 * Everything `ask` writes. On a terminal, one progress line on stderr is redrawn in place; when
 * stdout is the same terminal it steps aside while the answer streams, so the two never mix.
 * Elsewhere (pipes, logs) each finished stage gets a plain line.
 */
class AskDisplay {
  private readonly tty = process.stderr.isTTY;
  private readonly shared = process.stderr.isTTY && process.stdout.isTTY;
  private stages = new Map<StageName, StageState>();
  private status: 'queued' | 'active' = 'queued';
  private attempt = 1;
  private progressShown = false;
  private answerOpen = false;
  private ticker: NodeJS.Timeout | undefined;
  /** The answer text of the current attempt, as streamed. */
  streamed = '';

  constructor(private readonly json: boolean) {
    // Redraws so a running stage's elapsed time moves; only a terminal shows it.
    if (this.tty) this.ticker = setInterval(() => this.render(), 250).unref();
  }

  onEvent(e: StreamEvent): void {
    switch (e.event) {
      case 'status': {
        const data = e.data as EventDataMap['status'];
        this.status = data.status;
        this.attempt = data.attempt;
        this.render();
        break;
      }
      case 'stage': {
        const data = e.data as EventDataMap['stage'];
        const previous = this.stages.get(data.stage);
        this.stages.set(data.stage, {
          state: data.state,
          ms: data.ms,
          startedAt: previous?.startedAt ?? Date.now(),
        });
        if (data.stage === 'generation' && data.state !== 'started') this.closeAnswer();
        if (!this.tty && data.state !== 'started') {
          this.line(`${data.stage} ${data.state === 'failed' ? 'failed' : duration(data.ms)}`);
        }
        this.render();
        break;
      }
      case 'token': {
        const { text } = e.data as EventDataMap['token'];
        this.streamed += text;
        if (this.json) break;
        if (this.shared) this.clearProgress();
        process.stdout.write(text);
        this.answerOpen = true;
        break;
      }
      case 'retry': {
        const { attempt, reason } = e.data as EventDataMap['retry'];
        const why =
          reason === 'escalation'
            ? 'the answer did not pass validation; the smart model writes it again'
            : reason === 'worker_lost'
              ? `a worker was lost; attempt ${attempt} starts over`
              : `attempt ${attempt} after ${reason}`;
        const discarded = this.streamed !== '' && !this.json ? ' (discard the text above)' : '';
        this.line(`retry: ${why}${discarded}`);
        this.streamed = '';
        this.stages = new Map();
        this.attempt = attempt;
        this.render();
        break;
      }
    }
  }

  /**
   * A line of its own on stderr, above the progress line. It ends the answer's line on stdout,
   * unless `midAnswer` says the answer goes on (a resumed connection): then stdout is left alone,
   * and only a terminal it shares with stderr gets a line break.
   */
  line(text: string, midAnswer = false): void {
    if (!midAnswer) this.closeAnswer();
    else if (this.answerOpen && this.shared) process.stderr.write('\n');
    this.clearProgress();
    process.stderr.write(`${text}\n`);
    this.render();
  }

  /** Leaves the final progress line (terminal) and stops redrawing. */
  finish(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.closeAnswer();
    if (this.tty && this.stages.size > 0) {
      this.clearProgress();
      process.stderr.write(`${this.progressText()}\n`);
    }
  }

  /** Clears the terminal's progress line for good, e.g. before the Ctrl-C message. */
  abandon(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.closeAnswer();
    this.clearProgress();
  }

  private closeAnswer(): void {
    if (!this.answerOpen) return;
    process.stdout.write('\n');
    this.answerOpen = false;
  }

  private clearProgress(): void {
    if (!this.progressShown) return;
    process.stderr.write('\r\x1b[2K');
    this.progressShown = false;
  }

  private render(): void {
    if (!this.tty || this.ticker === undefined || (this.shared && this.answerOpen)) return;
    process.stderr.write(`\r\x1b[2K${this.progressText()}`);
    this.progressShown = true;
  }

  private progressText(): string {
    const parts = STAGES.map((name) => {
      const stage = this.stages.get(name);
      if (!stage) return name;
      if (stage.state === 'failed') return `${name} failed`;
      if (stage.state === 'completed') return `${name} ${duration(stage.ms)}`;
      const elapsed = Date.now() - stage.startedAt;
      return elapsed < 1000 ? `${name} …` : `${name} ${duration(elapsed)} …`;
    });
    if (this.attempt > 1) parts.unshift(`attempt ${this.attempt}`);
    if (this.status === 'queued' && this.stages.size === 0) parts.unshift('queued');
    return parts.join(' · ');
  }
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '?';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** `[n] title (documentId) score 0.42`, numbered as the answer cites them. */
function sourceLines(sources: Source[]): string[] {
  return sources.map(
    (s, i) =>
      `[${i + 1}] ${s.title ? `${s.title} (${s.documentId})` : s.documentId} score ${s.score.toFixed(2)}`,
  );
}

function summaryLines(result: QuestionResult): string[] {
  const t = result.timings;
  const lines = [
    [
      `model ${result.model}`,
      `route ${result.route}`,
      `cached ${result.cached ? 'yes' : 'no'}`,
      `tokens ${result.usage.promptTokens} in, ${result.usage.completionTokens} out`,
    ].join(' · '),
    [
      `queue ${duration(t.queueMs)}`,
      `retrieval ${duration(t.retrievalMs)}`,
      `generation ${duration(t.generationMs)}`,
      `validation ${duration(t.validationMs)}`,
      `total ${duration(t.totalMs)}`,
    ].join(' · '),
  ];
  if (!result.validation.passed) {
    const failed = result.validation.checks.filter((c) => !c.passed);
    lines.push(
      `validation did not pass: ${failed.map((c) => (c.detail ? `${c.name} (${c.detail})` : c.name)).join(', ')}`,
    );
  }
  return lines;
}

/** The answer (unless it was streamed already), its sources on stdout, the summary on stderr. */
function printResult(result: QuestionResult, streamed: string): void {
  if (streamed.trim() === '') process.stdout.write(`${result.answer}\n`);
  if (result.sources.length > 0)
    process.stdout.write(`\n${sourceLines(result.sources).join('\n')}\n`);
  process.stderr.write(`${summaryLines(result).join('\n')}\n`);
}

async function ask(argv: string[]): Promise<number> {
  const { values, positionals } = parse(ASK_USAGE, {
    args: argv,
    options: {
      collection: { type: 'string', short: 'c' },
      model: { type: 'string', short: 'm' },
      'top-k': { type: 'string', short: 'k' },
      'no-cache': { type: 'boolean' },
      json: { type: 'boolean' },
      'cancel-on-exit': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(ASK_USAGE);
    return 0;
  }
  // `ask how does it work` reads as well as `ask "how does it work"`.
  if (positionals.length === 0) throw usageError(ASK_USAGE, 'give the question to ask');
  const body: Record<string, unknown> = { question: positionals.join(' ') };
  if (values.collection !== undefined) body.collection = values.collection;
  if (values.model !== undefined) {
    if (!['auto', 'fast', 'smart'].includes(values.model)) {
      throw usageError(ASK_USAGE, `--model must be auto, fast or smart, not "${values.model}"`);
    }
    body.model = values.model;
  }
  if (values['top-k'] !== undefined) {
    // The server checks the range and says so; a non-number cannot even be sent as JSON.
    if (!/^\d+$/.test(values['top-k'])) {
      throw usageError(ASK_USAGE, `--top-k must be a whole number, not "${values['top-k']}"`);
    }
    body.topK = Number(values['top-k']);
  }
  if (values['no-cache']) body.cache = false;
  const json = values.json === true;
  const target = loadTarget(ASK_USAGE);

  // Ctrl-C leaves the question running unless asked otherwise: it is durable, and another
  // client (or `status`) can pick it up.
  let id: string | undefined;
  let display: AskDisplay | undefined;
  const interrupted = new AbortController();
  const onSigint = () => {
    process.once('SIGINT', () => process.exit(130));
    interrupted.abort();
    display?.abandon();
    void (async () => {
      if (id === undefined) {
        process.stderr.write('askq ask: interrupted before the question was accepted\n');
      } else if (values['cancel-on-exit']) {
        const reply = await request(
          target,
          'DELETE',
          `/v1/questions/${encodeURIComponent(id)}`,
          undefined,
          5000,
        ).catch((e: unknown) => ({ status: 0, json: toError(e).message }));
        process.stderr.write(
          reply.status === 200 || reply.status === 202
            ? `askq ask: cancelled question ${id}\n`
            : reply.status === 409
              ? `askq ask: question ${id} had already finished\n`
              : `askq ask: could not cancel question ${id}: ${reply.status === 0 ? String(reply.json) : `HTTP ${reply.status}`}\n`,
        );
      } else {
        process.stderr.write(
          `askq ask: question ${id} goes on; see it with: npm run askq -- status ${id}\n`,
        );
      }
      process.exit(130);
    })();
  };
  process.once('SIGINT', onSigint);

  try {
    const reply = await request(target, 'POST', '/v1/questions', body);
    if (reply.status !== 200 && reply.status !== 202) {
      throw apiError(target, reply, 'POST /v1/questions');
    }
    const accepted = reply.json as {
      id: string;
      coalesced?: boolean;
      result?: QuestionResult;
      links: { events: string };
    };
    id = accepted.id;
    // An exact cache hit answers at once (SPEC 6); nothing to follow.
    if (reply.status === 200 && accepted.result) {
      process.stderr.write(`question ${id} answered from the cache\n`);
      if (json) {
        process.stdout.write(
          `${JSON.stringify({ id, status: 'completed', result: accepted.result }, null, 2)}\n`,
        );
      } else printResult(accepted.result, '');
      return 0;
    }
    process.stderr.write(
      `question ${id}${accepted.coalesced ? ' (joined an identical question already running)' : ''}\n`,
    );

    display = new AskDisplay(json);
    const shown = display;
    let result: QuestionResult | undefined;
    let error: { code: string; message: string } | undefined;
    let outcome: StreamOutcome;
    try {
      outcome = await followEvents({
        url: target.url + accepted.links.events,
        headers: target.headers,
        signal: interrupted.signal,
        onEvent: (e) => {
          if (e.event === 'completed') result = (e.data as EventDataMap['completed']).result;
          else if (e.event === 'failed') error = (e.data as EventDataMap['failed']).error;
          else shown.onEvent(e);
        },
        onReconnect: ({ attempt, error: why }) =>
          shown.line(`connection lost (${networkReason(why)}); resuming, try ${attempt}`, true),
      });
    } catch (e) {
      shown.abandon();
      // Ctrl-C with --cancel-on-exit: the SIGINT handler sends DELETE, then exits.
      if (interrupted.signal.aborted) return 130;
      const err = toError(e);
      if (!(err instanceof EventStreamError)) throw err;
      const goesOn = `\nThe question may go on: npm run askq -- status ${id}`;
      if (err.reason === 'lost') {
        throw new CliError(2, `${err.message} (ASKQ_URL ${target.url})${goesOn}`, { cause: err });
      }
      if (err.reason === 'unauthorized') {
        throw new CliError(2, `${err.message}\nSet ASKQ_API_KEY to one of the server's API_KEYS.`);
      }
      throw new CliError(2, `following question ${id}: ${err.message}${goesOn}`, { cause: err });
    }
    display.finish();

    if (json) {
      const view =
        outcome === 'completed'
          ? { id, status: outcome, result }
          : { id, status: outcome, ...(error ? { error } : {}) };
      process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    }
    if (outcome === 'completed' && result) {
      if (!json) printResult(result, display.streamed);
      return 0;
    }
    if (outcome === 'failed') {
      process.stderr.write(
        `askq ask: question ${id} failed: ${error ? `${error.code}: ${error.message}` : 'no reason given'}\n`,
      );
    } else {
      process.stderr.write(`askq ask: question ${id} was cancelled\n`);
    }
    return 1;
  } finally {
    display?.abandon();
    process.removeListener('SIGINT', onSigint);
  }
}

// ---------------------------------------------------------------------------------------------
// status

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parse(STATUS_USAGE, {
    args: argv,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(STATUS_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === '') {
    throw usageError(STATUS_USAGE, 'give exactly one question id');
  }
  const id = positionals[0]!;
  const target = loadTarget(STATUS_USAGE);
  const reply = await request(target, 'GET', `/v1/questions/${encodeURIComponent(id)}`);
  if (reply.status === 404) {
    throw new CliError(
      2,
      `no question ${id} at ${target.url} (unknown, expired, or another key's tenant)`,
    );
  }
  if (reply.status !== 200) throw apiError(target, reply, `GET /v1/questions/${id}`);
  const view = reply.json as QuestionView;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
    return 0;
  }
  const rows: Array<[string, string | undefined]> = [
    ['id', view.id],
    ['status', view.status],
    ['stage', view.stage],
    ['attempts', String(view.attempts)],
    ['collection', view.collection],
    ['question', view.question],
    ['created', view.createdAt],
    ['started', view.startedAt],
    ['finished', view.finishedAt],
    ['error', view.error ? `${view.error.code}: ${view.error.message}` : undefined],
  ];
  const out = rows.flatMap(([name, value]) =>
    value === undefined ? [] : [`${name.padEnd(11)}${value}`],
  );
  if (view.result) {
    const labels = ['result', 'timings', 'validation'];
    out.push(...summaryLines(view.result).map((l, i) => `${(labels[i] ?? '').padEnd(11)}${l}`));
    out.push('', view.result.answer);
    if (view.result.sources.length > 0) out.push('', ...sourceLines(view.result.sources));
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// ingest: the same steps as scripts/ingest.ts, through the same library.

async function ingestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(INGEST_USAGE, {
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
  const { url, apiKey } = loadTarget(INGEST_USAGE);
  const cwd = invocationCwd();
  const show = (path: string) => {
    const rel = relative(cwd, path);
    return rel.startsWith('..') || isAbsolute(rel) ? path : rel || '.';
  };

  const named = new Set(positionals.map((p) => resolve(cwd, p)));
  const { files, skipped, bad, docs, fileOf } = await loadDocuments([...named], show);

  let result: Awaited<ReturnType<typeof ingest>> = { ingested: [], failed: [] };
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
          : `Start askq (npm start) or set ASKQ_URL to where it runs (now ${url}).`;
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

// `npm run` starts scripts in the package root; paths are meant from where the user typed them.
const invocationCwd = () =>
  process.env.npm_lifecycle_event === 'askq' && process.env.INIT_CWD
    ? process.env.INIT_CWD
    : process.cwd();

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A bar over chunks on a terminal; otherwise a plain line now and then, for logs and CI. */
function createIngestProgress(): { update: (p: IngestProgress) => void; stop: () => void } {
  if (process.stdout.isTTY) {
    const bar = new SingleBar({
      stream: process.stdout,
      format: 'chunks [{bar}] {percentage}% | {value}/{total} | documents {docs}/{docsTotal}',
      barsize: 30,
    });
    let started = false;
    return {
      update: (p) => {
        // Totals are 0 until the worker has chunked a batch, and cli-progress draws 0/0 as 100%.
        if (p.chunksTotal === 0 && !started) return;
        const payload = { docs: p.documentsDone, docsTotal: p.documentsTotal };
        if (!started) bar.start(p.chunksTotal, p.chunksDone, payload);
        else {
          bar.setTotal(p.chunksTotal);
          bar.update(p.chunksDone, payload);
        }
        started = true;
      },
      stop: () => {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let last: IngestProgress | undefined;
  let lastAt = 0;
  return {
    update: (p) => {
      // One line a second at most, plus one whenever a batch finishes, so logs stay short.
      const batchDone = p.documentsDone !== last?.documentsDone;
      const moved =
        batchDone || p.chunksDone !== last?.chunksDone || p.chunksTotal !== last.chunksTotal;
      if (!moved || (!batchDone && Date.now() - lastAt < 1000)) return;
      console.log(
        `chunks ${p.chunksDone}/${p.chunksTotal}, documents ${p.documentsDone}/${p.documentsTotal}`,
      );
      last = p;
      lastAt = Date.now();
    },
    stop: () => {},
  };
}

// ---------------------------------------------------------------------------------------------

// eval: scripts/lib/eval/ does the work (shared with `npm run eval`).
async function evalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(EVAL_USAGE, { args: argv, options: EVAL_OPTIONS });
  if (values.help) {
    console.log(EVAL_USAGE);
    return 0;
  }
  const { url, apiKey } = loadTarget(EVAL_USAGE);
  try {
    return await evaluate(values, positionals, { url, apiKey, cwd: invocationCwd() });
  } catch (e) {
    if (!(e instanceof EvalCommandError)) throw e;
    throw e.usage ? usageError(EVAL_USAGE, e.message) : new CliError(2, e.message);
  }
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  ask,
  status,
  ingest: ingestCommand,
  eval: evalCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new CliError(2, `name a command\n\n${USAGE}`);
  if (command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) throw new CliError(2, `unknown command "${command}"\n\n${USAGE}`);
  try {
    return await run(rest);
  } catch (e) {
    const err = toError(e);
    if (err instanceof CliError) err.message = `askq ${command}: ${err.message}`;
    throw err;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  const err = toError(e);
  if (!(err instanceof CliError)) throw err;
  process.stderr.write(`${err.message.startsWith('askq') ? '' : 'askq: '}${err.message}\n`);
  process.exitCode = err.exitCode;
}
