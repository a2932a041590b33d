import type { PublicError, QuestionResult, QuestionStatus, QuestionView } from './question.js';

/**
 * Fields of the question hash in Redis; every value is a string there. Only question-store.ts
 * writes them (with the event log's append script, which keeps `attempts` and `lastEvent`).
 */
export type QuestionRecordFields = {
  tenant: string;
  question: string;
  collection: string;
  model: string;
  topK: string;
  cache: string;
  /** JSON of the conversation's earlier turns (Turn[]), bounded; absent when it stands alone. */
  history?: string;
  /** The question this one followed up, when asked with previousQuestionId. */
  previousQuestionId?: string;
  status: QuestionStatus;
  /** Epoch milliseconds. */
  createdAt: string;
  /** Epoch milliseconds by which the question must have ended, or the sweep ends it. */
  deadline?: string;
  startedAt?: string;
  finishedAt?: string;
  stage?: string;
  /** The latest attempt that wrote (the append script fences older ones off by it). */
  attempts?: string;
  /** The attempt announced by a `retry` event: a later attempt without one lost its worker. */
  retryAttempt?: string;
  /** The id of the last event logged (published events name the one before them). */
  lastEvent?: string;
  /** JSON of QuestionResult. */
  result?: string;
  /** JSON of PublicError. */
  error?: string;
  /** The in-flight registration this question holds (coalescing); released when it finishes. */
  inFlightKey?: string;
  /** Clients that asked this question: its owner and those who joined it while it ran. */
  holders?: string;
  /** "1" once a client asked to cancel; the event log then refuses everything but `cancelled`. */
  cancelRequested?: string;
};

const iso = (ms: string | undefined) => {
  const date = new Date(Number(ms));
  // A missing or corrupt timestamp is left out rather than failing the whole view.
  return ms && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
};

/** Turns a stored record (HGETALL) into the public view; undefined when it does not exist. */
export function toQuestionView(
  id: string,
  hash: Readonly<Record<string, string | undefined>>,
): QuestionView | undefined {
  if (!hash.status || !hash.question) return undefined;
  const record = hash as unknown as QuestionRecordFields;
  const view: QuestionView = {
    id,
    status: record.status,
    question: record.question,
    collection: record.collection,
    createdAt: iso(record.createdAt) ?? '',
    attempts: Number(record.attempts ?? 0),
  };
  const startedAt = iso(record.startedAt);
  const finishedAt = iso(record.finishedAt);
  if (startedAt) view.startedAt = startedAt;
  if (finishedAt) view.finishedAt = finishedAt;
  if (record.stage) view.stage = record.stage;
  if (record.previousQuestionId) view.previousQuestionId = record.previousQuestionId;
  if (record.result) view.result = JSON.parse(record.result) as QuestionResult;
  if (record.error) view.error = JSON.parse(record.error) as PublicError;
  return view;
}
