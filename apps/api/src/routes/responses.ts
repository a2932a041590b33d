import express, { Router, type Response } from 'express';
import { z } from 'zod';
import { AppError, logPages, type LoggedEvent, type QuestionView } from '@askq/shared';
import type { StreamLease } from '../follow.js';
import { parseBody, parseQuery } from '../http.js';
import { admission, refusalFirst } from '../limits.js';
import { OpenAiRouteError } from '../openai/errors.js';
import {
  QUESTION_ID_HEADER,
  interrupted,
  toAsk,
  type OpenAiDeps,
  type OpenAiKit,
} from '../openai/kit.js';
import { modelIdOf } from '../openai/models.js';
import { ResponseRequest, toQuestion } from '../openai/requests.js';
import {
  createResponseStream,
  questionIdOf,
  responseFrame,
  type ResponseIdentity,
} from '../openai/response-stream.js';
import { unavailable } from '../unavailable.js';
import { writeSseHead } from '../sse.js';

const ResponseQuery = z.looseObject({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(-1).optional(),
});

// A running response's cancel answers once it has ended `cancelled` (the worker aborts within a
// token batch), or after this long with the cancel recorded and the response still in progress.
const CANCEL_WAIT_MS = 5_000;

/**
 * The Responses API: `POST /v1/responses`, `GET /v1/responses/{id}` (poll, or resume the stream
 * by `sequence_number`), `POST /v1/responses/{id}/cancel`. A response is a question: its id is
 * `resp_<question id>`, and its events are its question's log, translated the same way in every
 * API process.
 */
export function responseRoutes(deps: OpenAiDeps, kit: OpenAiKit): Router {
  const router = Router();

  /** The response of a question, as it stands: its log, translated. */
  const responseOf = async (identity: ResponseIdentity) => {
    const translator = createResponseStream(identity);
    // Page by page: the translator keeps the response, not the log.
    try {
      for await (const page of logPages(deps.events, identity.questionId)) {
        for (const event of page) translator.push(event);
      }
    } catch (e) {
      unavailable(e);
    }
    return translator.snapshot();
  };

  /** Streams a response's events after `startingAfter` (-1: from the first). */
  const stream = async (
    tenant: string,
    identity: ResponseIdentity,
    res: Response,
    startingAfter: number,
    lease?: Promise<StreamLease>,
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
      .open(tenant, identity.questionId, res, {
        format,
        farewell: () => interrupted(identity.questionId, 'response'),
        ...(lease ? { lease } : {}),
      })
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

  router.post(
    '/v1/responses',
    deps.rateLimit,
    refusalFirst(express.json({ limit: deps.bodyLimit })),
    async (req, res) => {
      const tenant = res.locals.tenant as string;
      let body!: ResponseRequest;
      const { id, lease } = await kit.ask(req, res, async () => {
        body = parseBody(ResponseRequest, req.body);
        const { collection, route } = await kit.model(tenant, body.model);
        const { question, history } =
          typeof body.input === 'string'
            ? { question: body.input, history: [] }
            : toQuestion(body.input, 'input');
        const previous = body.previous_response_id
          ? (await viewOf(tenant, body.previous_response_id, 'previous_response_id')).id
          : undefined;
        const request = toAsk(
          { question, collection, model: route, history, previousQuestionId: previous },
          'input',
        );
        return { request, stream: body.stream === true };
      });
      const identity = identityOf(await deps.questions.get(tenant, id));
      if (body.stream === true) {
        await stream(tenant, identity, res, -1, lease);
        return;
      }
      // In the background, the response is answered as it stands (queued, or already completed
      // from the cache); otherwise once it has ended. Either way it runs to its end, and can be
      // polled, resumed and cancelled: every askq question is durable.
      if (body.background !== true && !(await kit.ending(res, id))) return;
      res.json(await responseOf(identity));
    },
  );

  router.get('/v1/responses/:id', async (req, res) => {
    const tenant = res.locals.tenant as string;
    const query = parseQuery(ResponseQuery, req.query);
    const identity = identityOf(await viewOf(tenant, req.params.id));
    res.setHeader(QUESTION_ID_HEADER, identity.questionId);
    if (query.stream === 'true') {
      await stream(tenant, identity, res, query.starting_after ?? -1);
      return;
    }
    res.json(await responseOf(identity));
  });

  router.post('/v1/responses/:id/cancel', deps.rateLimit, async (req, res) => {
    const tenant = res.locals.tenant as string;
    await admission(res);
    const view = await viewOf(tenant, String(req.params.id));
    res.setHeader(QUESTION_ID_HEADER, view.id);
    // Cancelling a cancelled response again changes nothing; a finished one is a final 409.
    if (view.status !== 'cancelled') {
      let cancelled;
      try {
        cancelled = await deps.questions.cancel(tenant, view.id);
      } catch (e) {
        if (e instanceof AppError && e.code === 'CONFLICT') kit.final(res, e);
        throw e;
      }
      if (cancelled.outcome === 'cancelling') {
        await kit.ending(res, view.id, CANCEL_WAIT_MS).catch(() => undefined);
      }
    }
    res.json(await responseOf(identityOf(await deps.questions.get(tenant, view.id))));
  });

  return router;
}
