import express, { Router } from 'express';
import { AppError, type PublicError, type QuestionResult } from '@askq/shared';
import { parseBody } from '../http.js';
import { refusalFirst } from '../limits.js';
import { chatCompletion, createChatStream } from '../openai/chat-stream.js';
import { questionFailure } from '../openai/errors.js';
import { interrupted, toAsk, type OpenAiDeps, type OpenAiKit } from '../openai/kit.js';
import { ChatCompletionRequest, toQuestion } from '../openai/requests.js';
import { writeSseHead } from '../sse.js';

/** `POST /v1/chat/completions`: the last user message is the question, the others its turns. */
export function chatCompletionRoutes(deps: OpenAiDeps, kit: OpenAiKit): Router {
  const router = Router();

  router.post(
    '/v1/chat/completions',
    deps.rateLimit,
    refusalFirst(express.json({ limit: deps.bodyLimit })),
    async (req, res) => {
      const tenant = res.locals.tenant as string;
      let body!: ChatCompletionRequest;
      const { id, lease } = await kit.ask(req, res, async () => {
        body = parseBody(ChatCompletionRequest, req.body);
        const { collection, route } = await kit.model(tenant, body.model);
        const { question, history } = toQuestion(body.messages, 'messages');
        const request = toAsk({ question, collection, model: route, history }, 'messages');
        return { request, stream: body.stream === true };
      });
      const identity = {
        questionId: id,
        model: body.model,
        created: Math.floor(Date.now() / 1_000),
      };
      if (body.stream === true) {
        const format = createChatStream(identity, {
          includeUsage: body.stream_options?.include_usage === true,
        });
        await deps.follower
          .open(tenant, id, res, {
            format,
            farewell: () => interrupted(id, 'chat'),
            ...(lease ? { lease } : {}),
          })
          .serve(() => writeSseHead(res));
        return;
      }
      const end = await kit.ending(res, id);
      if (!end) return;
      const data = JSON.parse(end.data) as { result?: QuestionResult; error?: PublicError };
      if (end.event === 'completed' && data.result) {
        res.json(chatCompletion(identity, data.result));
        return;
      }
      if (end.event === 'failed' && data.error) kit.final(res, questionFailure(data.error));
      kit.final(res, new AppError('CANCELLED', 'the question was cancelled'));
    },
  );

  return router;
}
