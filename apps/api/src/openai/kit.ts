import type { Request, RequestHandler, Response } from 'express';
import {
  AppError,
  AskRequest,
  withDeadline,
  type EventLog,
  type LoggedEvent,
  type Turn,
} from '@askq/shared';
import type { Asking } from '../asking.js';
import type { DocumentService } from '../document-service.js';
import type { Follower, StreamLease } from '../follow.js';
import { parseBody } from '../http.js';
import { admission } from '../limits.js';
import type { QuestionService } from '../question-service.js';
import { toOpenAiError } from './errors.js';
import { parseModel, type AskqModel } from './models.js';

/** The header every OpenAI-compatible answer carries: the question behind it, for the native API. */
export const QUESTION_ID_HEADER = 'X-Askq-Question-Id';

/** What the OpenAI-compatible routes share. */
export interface OpenAiDeps {
  questions: QuestionService;
  documents: DocumentService;
  asking: Asking;
  follower: Follower;
  events: EventLog;
  rateLimit: RequestHandler;
  bodyLimit: string;
}

/** The steps every OpenAI-compatible route takes: finding the model, asking, waiting. */
export function createOpenAiKit(deps: OpenAiDeps) {
  return {
    /** The collection and route a model id names, for this tenant. */
    async model(tenant: string, id: string): Promise<AskqModel> {
      // `askq` (the default collection) needs no lookup; other collections must exist.
      const named = id.startsWith('askq/');
      return parseModel(id, named ? await deps.documents.collections(tenant) : []);
    },

    /**
     * Takes the question a body asks. The body is checked (and the model found) before anything
     * is written; a refused request hears its 429 first, as on the native route. A request to
     * be streamed takes its stream lease first too: past the tenant's open streams it is
     * refused, rather than asked and then not streamed.
     */
    async ask(
      req: Request,
      res: Response,
      parse: () => Promise<{ request: AskRequest; stream: boolean }>,
    ): Promise<{ id: string; lease?: Promise<StreamLease> }> {
      const tenant = res.locals.tenant as string;
      const admitted = admission(res);
      let parsed: Awaited<ReturnType<typeof parse>>;
      try {
        parsed = await parse();
      } catch (e) {
        await admitted;
        throw e;
      }
      await admitted;
      const lease = parsed.stream ? deps.follower.reserve(tenant) : undefined;
      let id: string;
      try {
        await lease;
        const key = req.get('idempotency-key');
        const accepted = await deps.asking(tenant, parsed.request, admitted, key);
        id = accepted.body.id;
        // A replayed Idempotency-Key may name a question that has expired since: a 404, not a
        // wait for events that will never come.
        if (key !== undefined) await deps.questions.get(tenant, id);
      } catch (e) {
        void lease?.then(
          (held) => held.release().catch(() => undefined),
          () => undefined,
        );
        throw e;
      }
      res.setHeader(QUESTION_ID_HEADER, id);
      return { id, ...(lease ? { lease } : {}) };
    },

    /**
     * Waits for a question's end, for a client that asked for the whole answer at once;
     * undefined when the client left (the question goes on: it is durable).
     */
    ending(res: Response, id: string, timeoutMs?: number): Promise<LoggedEvent | undefined> {
      const left = new AbortController();
      res.once('close', () => left.abort());
      if (res.closed) left.abort();
      if (timeoutMs === undefined) return deps.follower.end(id, left.signal);
      return withDeadline(timeoutMs, left.signal, (signal) => deps.follower.end(id, signal));
    },

    /**
     * Throws an outcome the question already had. OpenAI's SDKs retry 409 and 5xx by default;
     * asking again would not change this one (and would undo a cancel), so they are told not to.
     */
    final(res: Response, error: AppError): never {
      res.setHeader('x-should-retry', 'false');
      throw error;
    },
  };
}

/** The shared steps of the OpenAI-compatible routes. */
export type OpenAiKit = ReturnType<typeof createOpenAiKit>;

/**
 * A native question from what an OpenAI body asked, checked like one (its length, its turns);
 * a problem with the question is reported at the body's own field (`messages`, `input`).
 */
export function toAsk(
  asked: {
    question: string;
    collection: string;
    model: string;
    history: Turn[];
    previousQuestionId?: string | undefined;
  },
  field: string,
): AskRequest {
  const { history, previousQuestionId, ...rest } = asked;
  try {
    return parseBody(AskRequest, {
      ...rest,
      ...(history.length > 0 ? { history } : {}),
      ...(previousQuestionId ? { previousQuestionId } : {}),
    });
  } catch (e) {
    if (!(e instanceof AppError) || !Array.isArray(e.details)) throw e;
    const details = (e.details as Array<{ path: string; message: string }>).map((d) => ({
      path: field,
      message: `${d.path}: ${d.message}`,
    }));
    throw new AppError('INVALID_REQUEST', `the request's ${field} is invalid`, { details });
  }
}

/**
 * What an OpenAI stream cut short says (the API shutting down, the log unreadable): an error
 * the SDKs raise, so a cut answer is never taken for a whole one. `event: error` for the
 * Responses API, whose clients then resume with `starting_after`.
 */
export function interrupted(questionId: string, kind: 'chat' | 'response'): string {
  const error = toOpenAiError(
    new AppError(
      'UNAVAILABLE',
      kind === 'chat'
        ? `the stream was cut short; the answer goes on: GET /v1/questions/${questionId}`
        : 'the stream was cut short; resume it with GET /v1/responses/{id}?stream=true&starting_after=<last sequence_number>',
      { retryAfterSeconds: 1 },
    ),
  ).body;
  return kind === 'chat'
    ? `data: ${JSON.stringify(error)}\n\ndata: [DONE]\n\n`
    : `event: error\ndata: ${JSON.stringify({ type: 'error', ...error })}\n\n`;
}
