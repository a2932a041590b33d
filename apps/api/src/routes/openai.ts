import { Router } from 'express';
import { createOpenAiKit, type OpenAiDeps } from '../openai/kit.js';
import { listModels, modelIdOf } from '../openai/models.js';
import { chatCompletionRoutes } from './chat-completions.js';
import { responseRoutes } from './responses.js';

/**
 * OpenAI's API over askq's questions: `GET /v1/models`, `POST /v1/chat/completions` and the
 * Responses API. Each request is a durable question underneath, taken like one on
 * `POST /v1/questions` (the same limits, caches, idempotency and metrics); its id is in the
 * `X-Askq-Question-Id` header. Errors are in OpenAI's shape (http.ts, by path).
 */
export function openAiRoutes(deps: OpenAiDeps): Router {
  const router = Router();
  const kit = createOpenAiKit(deps);

  router.get('/v1/models', async (_req, res) => {
    res.json(listModels(await deps.documents.collections(res.locals.tenant as string)));
  });

  router.get('/v1/models/:model', async (req, res) => {
    const tenant = res.locals.tenant as string;
    const found = await kit.model(tenant, req.params.model);
    const listed = listModels(await deps.documents.collections(tenant)).data;
    res.json(listed.find((m) => m.id === modelIdOf(found.collection)) ?? listed[0]);
  });

  router.use(chatCompletionRoutes(deps, kit));
  router.use(responseRoutes(deps, kit));
  return router;
}
