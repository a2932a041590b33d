import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import {
  AppError,
  AskRequest,
  type EventLog,
  type LoggedEvent,
  type PublicError,
  type QuestionResult,
  type QuestionView,
  type Turn,
} from '@askq/shared';
import type { Asking } from '../asking.js';
import type { DocumentService } from '../document-service.js';
import type { Follower } from '../follow.js';
import { parseBody, parseQuery } from '../http.js';
import { admission, refusalFirst } from '../limits.js';
import { chatCompletion, createChatStream } from '../openai/chat-stream.js';
import { OpenAiRouteError, questionFailure } from '../openai/errors.js';
import { listModels, modelIdOf, parseModel, type AskqModel } from '../openai/models.js';
import { ChatCompletionRequest, ResponseRequest, toQuestion } from '../openai/requests.js';
import {
  createResponseStream,
  questionIdOf,
  responseFrame,
  type ResponseIdentity,
} from '../openai/response-stream.js';
import { unavailable, type QuestionService } from '../question-service.js';
import { writeSseHead } from '../sse.js';

/** The header every OpenAI-compatible answer carries: the question behind it, for the native API. */
export const QUESTION_ID_HEADER = 'X-Askq-Question-Id';

const ResponseQuery = z.looseObject({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(-1).optional(),
});

/**
 * OpenAI's API over askq's questions: `GET /v1/models`, `POST /v1/chat/completions` and the
 * Responses API (`POST /v1/responses`, `GET /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`).
 * Each request is a durable question underneath, taken like one on `POST /v1/questions` (the
 * same limits, caches, idempotency and metrics); its id is in {@link QUESTION_ID_HEADER}.
 */
export function openAiRoutes(deps: {
  questions: QuestionService;
  documents: DocumentService;
  asking: Asking;
  follower: Follower;
  events: EventLog;
  rateLimit: RequestHandler;
  bodyLimit: string;
}): Router {
  const router = Router();
  const json = refusalFirst(express.json({ limit: deps.bodyLimit }));

  const model = async (tenant: string, id: string): Promise<AskqModel> => {
    // `askq` (the default collection) needs no lookup; other collections must exist.
    const named = id.startsWith('askq/');
    return parseModel(id, named ? await deps.documents.collections(tenant) : []);
  };

  /**
   * Takes the question a body asks. The body is checked (and the model found) before anything
   * is written; a refused request hears its 429 first, as on the native route.
   */
  const ask = async (
    req: Request,
    res: Response,
    parse: () => Promise<AskRequest>,
  ): Promise<QuestionView['id']> => {
    const tenant = res.locals.tenant as string;
    const admitted = admission(res);
    let request: AskRequest;
    try {
      request = await parse();
    } catch (e) {
      await admitted;
      throw e;
    }
    const accepted = await deps.asking(tenant, request, admitted, req.get('idempotency-key'));
    res.setHeader(QUESTION_ID_HEADER, accepted.body.id);
    return accepted.body.id;
  };

  /**
   * Waits for a question's end, for a client that asked for the whole answer at once; undefined
   * when the client left (the question goes on: it is durable).
   */
  const ending = (res: Response, id: string): Promise<LoggedEvent | undefined> => {
    const left = new AbortController();
    res.once('close', () => left.abort());
    return deps.follower.end(id, left.signal);
  };

  router.get('/v1/models', async (_req, res) => {
    res.json(listModels(await deps.documents.collections(res.locals.tenant as string)));
  });

  router.get('/v1/models/:model', async (req, res) => {
    const tenant = res.locals.tenant as string;
    const found = await model(tenant, req.params.model);
    const listed = listModels(await deps.documents.collections(tenant)).data;
    res.json(listed.find((m) => m.id === modelIdOf(found.collection)) ?? listed[0]);
  });

  router.post('/v1/chat/completions', deps.rateLimit, json, async (req, res) => {
    const tenant = res.locals.tenant as string;
    let body!: ChatCompletionRequest;
    const id = await ask(req, res, async () => {
      body = parseBody(ChatCompletionRequest, req.body);
      const { collection, route } = await model(tenant, body.model);
      const { question, history } = toQuestion(body.messages, 'messages');
      return toAsk({ question, collection, model: route, history }, 'messages');
    });
    const identity = { questionId: id, model: body.model, created: Math.floor(Date.now() / 1_000) };
    if (body.stream === true) {
      const chat = createChatStream(identity, {
        includeUsage: body.stream_options?.include_usage === true,
      });
      await deps.follower.open(tenant, id, res, { format: chat }).serve(() => writeSseHead(res));
      return;
    }
    const end = await ending(res, id);
    if (!end) return;
    const data = JSON.parse(end.data) as { result?: QuestionResult; error?: PublicError };
    if (end.event === 'completed' && data.result) {
      res.json(chatCompletion(identity, data.result));
      return;
    }
    if (end.event === 'failed' && data.error) throw questionFailure(data.error);
    throw new AppError('CANCELLED', 'the question was cancelled');
  });

  /** The response of a question, as it stands: its log, translated. */
  const responseOf = async (identity: ResponseIdentity) => {
    const translator = createResponseStream(identity);
    const log = await deps.events.read(identity.questionId).catch(unavailable);
    for (const event of log) translator.push(event);
    return translator.snapshot();
  };

  /** Streams a response's events after `startingAfter` (-1: from the first). */
  const streamResponse = async (
    tenant: string,
    identity: ResponseIdentity,
    res: Response,
    startingAfter: number,
  ) => {
    // From the log's start whatever the client has: sequence numbers are counted from it.
    const translator = createResponseStream(identity);
    const format = (event: LoggedEvent) =>
      translator
        .push(event)
        .filter((e) => e.sequence_number > startingAfter)
        .map(responseFrame)
        .join('');
    await deps.follower
      .open(tenant, identity.questionId, res, { format })
      .serve(() => writeSseHead(res));
  };

  const identityOf = (view: QuestionView): ResponseIdentity => ({
    questionId: view.id,
    model: modelIdOf(view.collection),
    createdAt: Math.floor(Date.parse(view.createdAt) / 1_000),
    previousQuestionId: view.previousQuestionId,
  });

  /** The question behind a response id of this tenant (404 otherwise, as for a question). */
  const viewOf = async (tenant: string, responseId: string, param?: string) => {
    const questionId = questionIdOf(responseId);
    if (!questionId) {
      throw new OpenAiRouteError(
        'NOT_FOUND',
        `response ${responseId.slice(0, 100)} not found`,
        'not_found',
        param,
      );
    }
    return deps.questions.get(tenant, questionId);
  };

  router.post('/v1/responses', deps.rateLimit, json, async (req, res) => {
    const tenant = res.locals.tenant as string;
    let body!: ResponseRequest;
    const id = await ask(req, res, async () => {
      body = parseBody(ResponseRequest, req.body);
      const { collection, route } = await model(tenant, body.model);
      const { question, history } =
        typeof body.input === 'string'
          ? { question: body.input, history: [] }
          : toQuestion(body.input, 'input');
      const previous = body.previous_response_id
        ? (await viewOf(tenant, body.previous_response_id, 'previous_response_id')).id
        : undefined;
      return toAsk(
        { question, collection, model: route, history, previousQuestionId: previous },
        'input',
      );
    });
    const view = await deps.questions.get(tenant, id);
    const identity = identityOf(view);
    if (body.stream === true) {
      await streamResponse(tenant, identity, res, -1);
      return;
    }
    // In the background, the response is answered as it stands (queued, or already completed
    // from the cache); otherwise once it has ended. Either way it runs to its end, and can be
    // polled, resumed and cancelled: every askq question is durable.
    if (body.background !== true && !(await ending(res, id))) return;
    res.json(await responseOf(identity));
  });

  router.get('/v1/responses/:id', async (req, res) => {
    const tenant = res.locals.tenant as string;
    const query = parseQuery(ResponseQuery, req.query);
    const identity = identityOf(await viewOf(tenant, req.params.id));
    res.setHeader(QUESTION_ID_HEADER, identity.questionId);
    if (query.stream === 'true') {
      await streamResponse(tenant, identity, res, query.starting_after ?? -1);
      return;
    }
    res.json(await responseOf(identity));
  });

  router.post('/v1/responses/:id/cancel', deps.rateLimit, async (req, res) => {
    const tenant = res.locals.tenant as string;
    await admission(res);
    const view = await viewOf(tenant, String(req.params.id));
    res.setHeader(QUESTION_ID_HEADER, view.id);
    // Cancelling a cancelled response again changes nothing; a finished one is a 409.
    if (view.status !== 'cancelled') await deps.questions.cancel(tenant, view.id);
    res.json(await responseOf(identityOf(await deps.questions.get(tenant, view.id))));
  });

  return router;
}

/**
 * A native question from what an OpenAI body asked, checked like one (its length, its turns);
 * a problem with the question is reported at the body's own field (`messages`, `input`).
 */
function toAsk(
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
