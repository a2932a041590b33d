import { z } from 'zod';
import type { CacheStats } from './cache.js';
import type { CollectionView, IngestionView } from './documents.js';
import type { QuestionResult, QuestionView, Source } from './question.js';

// The API's responses as zod schemas, for the OpenAPI document. The request schemas are the very
// ones the routes validate with (question.ts, documents.ts); these mirror the response types, and
// the `Same` checks at the bottom fail the build if a type and its schema ever differ.

/** `{ error: { code, message, details? } }` (SPEC 2). */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z
      .string()
      .describe('A stable SNAKE_CASE code, e.g. INVALID_REQUEST, NOT_FOUND, RATE_LIMITED'),
    message: z.string(),
    details: z.unknown().optional().describe('For INVALID_REQUEST: [{ path, message }]'),
  }),
});

export const SourceSchema = z.object({
  documentId: z.string(),
  chunkId: z.string(),
  title: z.string().optional(),
  text: z.string(),
  score: z.number().describe('Cosine similarity, higher is better'),
});

export const ValidationSchema = z.object({
  passed: z.boolean(),
  checks: z.array(
    z.object({ name: z.string(), passed: z.boolean(), detail: z.string().optional() }),
  ),
});

export const QuestionResultSchema = z.object({
  answer: z.string(),
  sources: z.array(SourceSchema),
  model: z.string(),
  route: z.enum(['fast', 'smart']),
  cached: z.boolean(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }),
  timings: z.object({
    queueMs: z.number(),
    retrievalMs: z.number(),
    generationMs: z.number(),
    validationMs: z.number(),
    totalMs: z.number(),
  }),
  validation: ValidationSchema,
});

const Status = z.enum(['queued', 'active', 'completed', 'failed', 'cancelled']);

export const QuestionViewSchema = z.object({
  id: z.string(),
  status: Status,
  question: z.string(),
  collection: z.string(),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  stage: z.string().optional(),
  attempts: z.number(),
  previousQuestionId: z
    .string()
    .optional()
    .describe('The question this one followed up (it was asked with previousQuestionId)'),
  result: QuestionResultSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

/** `DELETE /v1/questions/{id}` answers: the question, and whether this client only let go of it. */
export const CancelAnswerSchema = QuestionViewSchema.extend({
  detached: z
    .literal(true)
    .optional()
    .describe('Others joined this question while it ran: it goes on for them, without this client'),
});

const Links = z.object({ self: z.string(), events: z.string() });

/** `POST /v1/questions` answers: 202 queued or joined, 200 answered from the cache. */
export const AskAcceptedSchema = z.object({
  id: z.string(),
  status: Status,
  createdAt: z.string(),
  links: Links,
  coalesced: z.literal(true).optional().describe('Joined an identical question already running'),
  cached: z.literal(true).optional().describe('Answered from the exact cache (status 200)'),
  result: QuestionResultSchema.optional(),
});

export const IngestAcceptedSchema = z.object({ ingestionId: z.string(), documents: z.number() });

export const IngestionViewSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'active', 'completed', 'failed']),
  operation: z.enum(['upsert', 'delete']),
  collection: z.string(),
  documents: z.array(
    z.object({ id: z.string(), chunks: z.number(), error: z.string().optional() }),
  ),
  chunksDone: z.number(),
  chunksTotal: z.number(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const CollectionViewSchema = z.object({
  name: z.string(),
  documents: z.number(),
  chunks: z.number(),
  version: z.number(),
  embedder: z.string(),
  dimension: z.number(),
});

const LayerStats = z.object({ hits: z.number(), misses: z.number(), hitRate: z.number() });
export const CacheStatsSchema = z.object({
  exact: LayerStats,
  semantic: LayerStats,
  hitRate: z.number(),
  entries: z.number(),
  estimatedSecondsSaved: z.number(),
});

/** The data of each event of the stream (SPEC 3), by event name. */
export const EventDataSchemas = {
  status: z.object({ status: z.enum(['queued', 'active']), attempt: z.number() }),
  stage: z.object({
    stage: z.enum(['retrieval', 'generation', 'validation']),
    state: z.enum(['started', 'completed', 'failed']),
    ms: z.number().optional(),
  }),
  sources: z.object({ sources: z.array(SourceSchema) }),
  token: z.object({ text: z.string(), attempt: z.number() }),
  retry: z.object({ attempt: z.number(), reason: z.string() }),
  completed: z.object({ result: QuestionResultSchema }),
  failed: z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
  cancelled: z.object({}),
} as const;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <T extends true>(_: T) => undefined;
same<Same<z.infer<typeof SourceSchema>, Source>>(true);
same<Same<z.infer<typeof QuestionResultSchema>, QuestionResult>>(true);
same<Same<z.infer<typeof QuestionViewSchema>, QuestionView>>(true);
same<Same<z.infer<typeof IngestionViewSchema>, IngestionView>>(true);
same<Same<z.infer<typeof CollectionViewSchema>, CollectionView>>(true);
same<Same<z.infer<typeof CacheStatsSchema>, CacheStats>>(true);
