// The runner of `askq eval`: asks every labelled question through askq's HTTP API (bounded
// concurrency, `cache: false`, `topK: 4` unless told otherwise), follows each event stream to
// its result, ranks the same questions with BM25 over the corpus when one is given, and sums it
// all up. Reads no env and never exits: the CLI does that.
import { toError, type CollectionView, type QuestionResult, type Source } from '@askq/shared';
import { withoutTrailingSlashes } from '../base-url.js';
import { EventStreamError, followEvents } from '../event-stream.js';
import { requestJson, UnreachableError } from '../http.js';
import { createBm25Index, type Bm25Document } from './bm25.js';
import type { LabelledQuestion } from './labelled.js';
import {
  answerHasFact,
  documentRanking,
  rankOf,
  RECALL_DEPTH,
  retrievalScores,
  share,
  type RetrievalScores,
} from './metrics.js';

/** Options of `runEval()`. */
export interface EvalOptions {
  /** Base URL of the API, without `/v1`. */
  url: string;
  apiKey?: string;
  questions: readonly LabelledQuestion[];
  /** The documents that were ingested, for the BM25 baseline; without them it is left out. */
  corpus?: readonly Bm25Document[];
  /** The collection asked (default: the server's `default`). */
  collection?: string;
  /** Passages retrieved per question (default 4); BM25's ranking is cut at as many documents. */
  topK?: number;
  /** Let questions be answered from the caches (default false: every question is answered anew). */
  cache?: boolean;
  model?: 'auto' | 'fast' | 'smart';
  /** Questions in flight at once (default 4). */
  concurrency?: number;
  /** Called once the collection is found, before the first question. */
  onStart?: (collection: CollectionView) => void;
  /** Called as each question ends. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** askq's figures: retrieval, and the answers' facts and validation. */
export interface AskqScores extends RetrievalScores {
  /** Share of the questions with a fact whose answer contains it; null when none has one. */
  factRate: number | null;
  /** Share of the questions whose answer passed validation (an unanswered one did not). */
  validationRate: number;
  /** Questions that did not complete (failed, cancelled, or refused): counted as misses. */
  unanswered: number;
}

/** What happened to one question. */
export interface QuestionOutcome {
  question: string;
  documentId: string;
  fact?: string | string[];
  askq: {
    /** The question's id at askq, when it was accepted. */
    id?: string;
    status: 'completed' | 'failed' | 'cancelled' | 'error';
    /** Rank of the expected document among the distinct documents of the sources; 0: absent. */
    rank: number;
    documents: string[];
    answer?: string;
    /** Whether the answer contains the fact; null when the question has none. */
    factFound: boolean | null;
    validationPassed: boolean;
    error?: string;
  };
  bm25?: { rank: number; documents: string[] };
}

/** A question whose expected document was not among the first 4 documents of a system. */
export interface Miss {
  system: 'askq' | 'bm25';
  question: string;
  documentId: string;
  /** The documents that system found instead, best first. */
  found: string[];
}

/** The outcome of `runEval()`, as `--json` writes it. */
export interface EvalSummary {
  questions: number;
  collection: CollectionView;
  topK: number;
  askq: AskqScores;
  bm25?: RetrievalScores;
  /** Expected documents that are not in the corpus given (the labelled file and it disagree). */
  notInCorpus?: string[];
  misses: Miss[];
  perQuestion: QuestionOutcome[];
}

/** The evaluation cannot go on: askq is unreachable, refuses the key, or lacks the collection. */
export class EvalAbortedError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'unauthorized' | 'not-askq' | 'no-collection',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EvalAbortedError';
  }
}

const MAX_RETRIES = 5;
const REQUEST_TIMEOUT_MS = 30_000;

interface Reply {
  status: number;
  json: unknown;
}

/** Asks every question, ranks them with BM25 when a corpus is given, and sums up. */
export async function runEval(options: EvalOptions): Promise<EvalSummary> {
  const { questions, collection, cache = false, model, onProgress } = options;
  const topK = options.topK ?? RECALL_DEPTH;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  const baseUrl = withoutTrailingSlashes(options.url);
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = options.apiKey
    ? { authorization: `Bearer ${options.apiKey}` }
    : {};
  // Until the server has answered once, a connection error means a wrong URL or a stopped server.
  let reached = false;

  const call = async (
    method: 'GET' | 'POST',
    path: string,
    signal: AbortSignal | undefined,
    body?: unknown,
  ): Promise<Reply> => {
    let reply: Reply;
    try {
      reply = await requestJson(baseUrl + path, {
        method,
        headers,
        body,
        signal,
        fetch: doFetch,
        retries: MAX_RETRIES,
        timeoutMs: REQUEST_TIMEOUT_MS,
        retryNetworkErrors: reached,
      });
    } catch (e) {
      signal?.throwIfAborted();
      if (!(e instanceof UnreachableError)) throw e;
      throw new EvalAbortedError('unreachable', `cannot reach askq at ${baseUrl}: ${e.reason}`, {
        cause: e,
      });
    }
    reached = true;
    if (reply.status === 401 || reply.status === 403) {
      throw new EvalAbortedError(
        'unauthorized',
        `${method} ${path} was refused: ${errorText(reply)}`,
      );
    }
    return reply;
  };

  const target = await findCollection(call, options.signal, baseUrl, collection ?? 'default');
  const bm25 = options.corpus ? createBm25Index(options.corpus) : undefined;
  options.onStart?.(target);

  const askOne = async (
    q: LabelledQuestion,
    signal: AbortSignal,
  ): Promise<QuestionOutcome['askq']> => {
    const body: Record<string, unknown> = { question: q.question, topK, cache };
    if (collection !== undefined) body.collection = collection;
    if (model !== undefined) body.model = model;
    const reply = await call('POST', '/v1/questions', signal, body);
    if (reply.status === 404) {
      throw new EvalAbortedError('not-askq', `${baseUrl} has no /v1/questions: is it askq?`);
    }
    // A proxy's error page is no JSON: nothing accepted.
    const accepted = (reply.json ?? {}) as {
      id?: string;
      result?: QuestionResult;
      links?: { events?: string };
    };
    if (reply.status === 200 && accepted.result) {
      return judge(q, { id: accepted.id, status: 'completed', result: accepted.result });
    }
    if (reply.status !== 202 || !accepted.id || !accepted.links?.events) {
      return judge(q, { status: 'error', error: `POST /v1/questions: ${errorText(reply)}` });
    }
    const { id } = accepted;
    let sources: Source[] = [];
    let result: QuestionResult | undefined;
    let error: string | undefined;
    try {
      const outcome = await followEvents({
        url: baseUrl + accepted.links.events,
        headers,
        signal,
        fetch: doFetch,
        onEvent: (e) => {
          // A new attempt retrieves again: the last `sources` are the ones answered from.
          if (e.event === 'sources') sources = (e.data as { sources: Source[] }).sources;
          else if (e.event === 'completed') result = (e.data as { result: QuestionResult }).result;
          else if (e.event === 'failed') {
            const failed = (e.data as { error?: { code?: string; message?: string } }).error;
            error = `${failed?.code ?? 'FAILED'}: ${failed?.message ?? 'no reason given'}`;
          }
        },
      });
      if (outcome === 'completed' && result) return judge(q, { id, status: outcome, result });
      return judge(q, { id, status: outcome, sources, error: error ?? outcome });
    } catch (e) {
      signal.throwIfAborted();
      const err = toError(e);
      if (err instanceof EventStreamError && err.reason === 'unauthorized') {
        throw new EvalAbortedError('unauthorized', err.message, { cause: err });
      }
      if (err instanceof EventStreamError && err.reason === 'lost') {
        throw new EvalAbortedError('unreachable', err.message, { cause: err });
      }
      return judge(q, { id, status: 'error', sources, error: err.message });
    }
  };

  // A fixed number of lanes take the next question as each finishes; the first error that ends
  // the whole run stops them all.
  const perQuestion: QuestionOutcome[] = [];
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  let next = 0;
  let done = 0;
  let fatal: Error | undefined;
  const lane = async () => {
    while (fatal === undefined && next < questions.length) {
      const index = next++;
      const q = questions[index]!;
      try {
        const askq = await askOne(q, signal);
        const ranked = bm25?.rank(q.question, topK);
        perQuestion[index] = {
          question: q.question,
          documentId: q.documentId,
          ...(q.fact === undefined ? {} : { fact: q.fact }),
          askq,
          ...(ranked ? { bm25: { rank: rankOf(ranked, q.documentId), documents: ranked } } : {}),
        };
      } catch (e) {
        fatal ??= toError(e);
        stop.abort(fatal);
        return;
      }
      onProgress?.(++done, questions.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, questions.length) }, lane));
  if (fatal) throw fatal;

  return summarize(perQuestion, target, topK, options.corpus);
}

/** The collection's view; a missing or empty collection ends the run before any question. */
async function findCollection(
  call: (method: 'GET', path: string, signal: AbortSignal | undefined) => Promise<Reply>,
  signal: AbortSignal | undefined,
  baseUrl: string,
  name: string,
): Promise<CollectionView> {
  const reply = await call('GET', '/v1/collections', signal);
  const listed = (reply.json as { collections?: CollectionView[] } | undefined)?.collections;
  if (reply.status !== 200 || !Array.isArray(listed)) {
    throw new EvalAbortedError(
      'not-askq',
      `GET ${baseUrl}/v1/collections answered ${errorText(reply)}: is it askq?`,
    );
  }
  const found = listed.find((c) => c.name === name);
  if (!found || found.documents === 0) {
    throw new EvalAbortedError(
      'no-collection',
      `collection "${name}" at ${baseUrl} ${found ? 'is empty' : 'does not exist'}: ingest the documents first (askq ingest --collection ${name} <folder>)`,
    );
  }
  return found;
}

/** One question's askq outcome: its ranking, fact and validation. */
function judge(
  q: LabelledQuestion,
  got: {
    id?: string;
    status: QuestionOutcome['askq']['status'];
    result?: QuestionResult;
    sources?: Source[];
    error?: string;
  },
): QuestionOutcome['askq'] {
  const documents = documentRanking(got.result?.sources ?? got.sources ?? []);
  const answer = got.result?.answer;
  return {
    ...(got.id === undefined ? {} : { id: got.id }),
    status: got.status,
    rank: rankOf(documents, q.documentId),
    documents,
    ...(answer === undefined ? {} : { answer }),
    factFound: q.fact === undefined ? null : answer !== undefined && answerHasFact(answer, q.fact),
    validationPassed: got.result?.validation.passed === true,
    ...(got.error === undefined ? {} : { error: got.error }),
  };
}

function summarize(
  perQuestion: QuestionOutcome[],
  collection: CollectionView,
  topK: number,
  corpus: readonly Bm25Document[] | undefined,
): EvalSummary {
  const n = perQuestion.length;
  const withFact = perQuestion.filter((p) => p.askq.factFound !== null);
  const askq: AskqScores = {
    ...retrievalScores(perQuestion.map((p) => p.askq.rank)),
    factRate: share(withFact.filter((p) => p.askq.factFound === true).length, withFact.length),
    validationRate: perQuestion.filter((p) => p.askq.validationPassed).length / n,
    unanswered: perQuestion.filter((p) => p.askq.status !== 'completed').length,
  };
  const missed = (rank: number) => rank === 0 || rank > RECALL_DEPTH;
  const misses: Miss[] = [];
  for (const system of ['askq', 'bm25'] as const) {
    for (const p of perQuestion) {
      const ranked = p[system];
      if (ranked && missed(ranked.rank)) {
        misses.push({
          system,
          question: p.question,
          documentId: p.documentId,
          found: ranked.documents,
        });
      }
    }
  }
  if (!corpus) return { questions: n, collection, topK, askq, misses, perQuestion };
  const ids = new Set(corpus.map((d) => d.id));
  const notInCorpus = [...new Set(perQuestion.map((p) => p.documentId))].filter(
    (id) => !ids.has(id),
  );
  return {
    questions: n,
    collection,
    topK,
    askq,
    bm25: retrievalScores(perQuestion.map((p) => p.bm25?.rank ?? 0)),
    ...(notInCorpus.length > 0 ? { notInCorpus } : {}),
    misses,
    perQuestion,
  };
}

/** The API's `CODE: message`, or the bare status. */
function errorText(reply: Reply): string {
  const error = (reply.json as { error?: { code?: unknown; message?: unknown } } | undefined)
    ?.error;
  return typeof error?.code === 'string'
    ? `${reply.status} ${error.code}: ${String(error.message)}`
    : `HTTP ${reply.status}`;
}
