import express, { Router, type RequestHandler } from 'express';
import { AskRequest, type AskRequest as Ask } from '@askq/shared';
import { parseBody } from '../http.js';
import type { Idempotency, StoredResponse } from '../idempotency.js';
import { admission, refusalFirst } from '../limits.js';
import type { QuestionService } from '../question-service.js';

/** `POST /v1/questions`, `GET /v1/questions/{id}`, `DELETE /v1/questions/{id}` (SPEC 2). */
export function questionRoutes(
  questions: QuestionService,
  options: { bodyLimit: string; rateLimit: RequestHandler; idempotency: Idempotency },
): Router {
  const router = Router();

  const accept = async (
    tenant: string,
    request: Ask,
    admitted: Promise<void>,
  ): Promise<StoredResponse> => {
    const { kind, view } = await questions.ask(tenant, request, admitted);
    const self = `/v1/questions/${view.id}`;
    const body = {
      id: view.id,
      status: view.status,
      createdAt: view.createdAt,
      links: { self, events: `${self}/events` },
    };
    // SPEC 2: an exact cache hit answers at once with the result; a joined question says so.
    if (kind === 'cached')
      return { status: 200, body: { ...body, cached: true, result: view.result } };
    if (kind === 'coalesced') return { status: 202, body: { ...body, coalesced: true } };
    return { status: 202, body };
  };

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
      const key = req.get('idempotency-key');
      let response: StoredResponse;
      if (key === undefined) {
        response = await accept(tenant, request, admitted);
      } else {
        await admitted;
        const decision = await options.idempotency.begin(tenant, key, request);
        if (decision.kind === 'replay') {
          response = decision.response;
        } else {
          try {
            response = await accept(tenant, request, admitted);
          } catch (e) {
            // Not accepted: the same key may be tried again.
            await decision.abandon().catch(() => undefined);
            throw e;
          }
          await decision.complete(response);
        }
      }
      const { links } = response.body as { links: { self: string } };
      res.status(response.status).location(links.self).json(response.body);
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
