import express, { Router, type RequestHandler } from 'express';
import { AskRequest, type AskRequest as Ask } from '@askq/shared';
import type { Asking } from '../asking.js';
import { parseBody } from '../http.js';
import { admission, refusalFirst } from '../limits.js';
import type { QuestionService } from '../question-service.js';

/** `POST /v1/questions`, `GET /v1/questions/{id}`, `DELETE /v1/questions/{id}` (SPEC 2). */
export function questionRoutes(
  questions: QuestionService,
  options: { bodyLimit: string; rateLimit: RequestHandler; asking: Asking },
): Router {
  const router = Router();

  router.post(
    '/v1/questions',
    options.rateLimit,
    refusalFirst(express.json({ limit: options.bodyLimit })),
    async (req, res) => {
      const tenant = res.locals.tenant as string;
      // Decided while the cache is read (see limits.ts); nothing is written before it.
      const admitted = admission(res);
      let request: Ask;
      try {
        request = parseBody(AskRequest, req.body);
      } catch (e) {
        await admitted;
        throw e;
      }
      const response = await options.asking(tenant, request, admitted, req.get('idempotency-key'));
      res.status(response.status).location(response.body.links.self).json(response.body);
    },
  );

  router.get('/v1/questions/:id', async (req, res) => {
    res.json(await questions.get(res.locals.tenant as string, req.params.id));
  });

  router.delete('/v1/questions/:id', async (req, res) => {
    const { view, outcome } = await questions.cancel(res.locals.tenant as string, req.params.id);
    // A client that joined a running question lets go of it; it goes on for the others.
    if (outcome === 'detached') res.status(200).json({ ...view, detached: true });
    else res.status(outcome === 'cancelled' ? 200 : 202).json(view);
  });

  return router;
}
