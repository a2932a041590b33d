import { z } from 'zod';
import { Turn } from './conversation.js';

/** BullMQ queue that carries one job per question. */
export const QUESTIONS_QUEUE = 'questions';

/** Question ids are UUIDs; anything else cannot exist. */
export const QUESTION_ID = /^[\w-]{1,64}$/;

/** Collection and tenant names: safe inside a Chroma collection name and a Redis key. */
export const NamePattern = /^[a-z0-9](?:[\w-]{0,62}[a-z0-9])?$/i;

/** The model a client asks for; `auto` lets the router choose. */
export const ModelChoice = z.enum(['auto', 'fast', 'smart']);
export type ModelChoice = z.infer<typeof ModelChoice>;

/** The route a question actually took. */
export type Route = 'fast' | 'smart';

/** Body of `POST /v1/questions` (SPEC 2). Unknown fields are rejected. */
export const AskRequest = z.strictObject({
  question: z.string().trim().min(1, 'must not be empty').max(4000, 'at most 4000 characters'),
  collection: z
    .string()
    .regex(NamePattern, 'letters, digits, "_" and "-", at most 64, alphanumeric at both ends')
    .default('default'),
  model: ModelChoice.default('auto'),
  topK: z.int().min(1).max(20).default(4),
  cache: z.boolean().default(true),
  /** Continues the conversation of an earlier, completed question of the tenant. */
  previousQuestionId: z.string().regex(QUESTION_ID, 'a question id').optional(),
  /** Or the earlier turns themselves, oldest first (a client that keeps its own conversation). */
  history: z.array(Turn).max(100, 'at most 100 turns').optional(),
});
export type AskRequest = z.infer<typeof AskRequest>;

/** A question with its conversation resolved: the earlier turns it carries, bounded. */
export type ResolvedAsk = Omit<AskRequest, 'history'> & { history?: Turn[] };

/** Payload of a question job. Parsed again by the worker: Redis may hold jobs of an older deploy. */
export const QuestionJob = z.object({
  id: z.string().min(1),
  tenant: z.string().min(1),
  question: z.string().min(1),
  collection: z.string().min(1),
  model: ModelChoice,
  topK: z.int().min(1).max(20),
  cache: z.boolean(),
  /** The conversation's earlier turns, bounded; absent for a question that stands alone. */
  history: z.array(Turn).optional(),
  /** Epoch milliseconds at enqueue, the start of every timing. */
  enqueuedAt: z.number(),
});
export type QuestionJob = z.infer<typeof QuestionJob>;

/** A retrieved passage; `score` is a similarity, higher is better. */
export interface Source {
  documentId: string;
  chunkId: string;
  title?: string;
  text: string;
  score: number;
}

/** One named validation check of an answer. */
export interface ValidationCheck {
  name: string;
  passed: boolean;
  detail?: string;
}

/** What the validation stage concluded. */
export interface Validation {
  passed: boolean;
  checks: ValidationCheck[];
}

/** Token counts reported by the model (or counted locally by the extractive provider). */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** Stage timings in milliseconds (SPEC 2). */
export interface Timings {
  queueMs: number;
  retrievalMs: number;
  generationMs: number;
  validationMs: number;
  totalMs: number;
}

/** The answer of a completed question (SPEC 2). */
export interface QuestionResult {
  answer: string;
  sources: Source[];
  model: string;
  route: Route;
  cached: boolean;
  usage: Usage;
  timings: Timings;
  validation: Validation;
}

/** Lifecycle of a question. */
export type QuestionStatus = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

/** Statuses after which nothing changes. */
export const TERMINAL_STATUSES: ReadonlySet<QuestionStatus> = new Set([
  'completed',
  'failed',
  'cancelled',
]);

/** A public error as clients see it. */
export interface PublicError {
  code: string;
  message: string;
}

/** `GET /v1/questions/{id}` (SPEC 2). */
export interface QuestionView {
  id: string;
  status: QuestionStatus;
  question: string;
  collection: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  stage?: string;
  attempts: number;
  /** The question this one followed up, when it continued a conversation that way. */
  previousQuestionId?: string;
  result?: QuestionResult;
  error?: PublicError;
}
