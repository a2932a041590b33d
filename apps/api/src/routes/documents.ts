import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { DocumentId, IngestRequest, NamePattern } from '@askq/shared';
import type { DocumentService } from '../document-service.js';
import { parseBody, parseQuery } from '../http.js';
import { awaitAdmission } from '../limits.js';

const DeleteQuery = z.strictObject({
  collection: z.string().regex(NamePattern, 'not a collection name').default('default'),
});

/** `POST /v1/documents`, `GET /v1/ingestions/{id}`, `DELETE /v1/documents/{id}`, `GET /v1/collections`. */
export function documentRoutes(
  documents: DocumentService,
  options: { bodyLimit: string; rateLimit: RequestHandler },
): Router {
  const router = Router();

  router.post(
    '/v1/documents',
    options.rateLimit,
    awaitAdmission,
    express.json({ limit: options.bodyLimit }),
    async (req, res) => {
      const request = parseBody(IngestRequest, req.body);
      const accepted = await documents.ingest(res.locals.tenant as string, request);
      res.status(202).location(`/v1/ingestions/${accepted.ingestionId}`).json(accepted);
    },
  );

  router.get('/v1/ingestions/:id', async (req, res) => {
    res.json(await documents.ingestion(res.locals.tenant as string, req.params.id));
  });

  router.delete('/v1/documents/:id', async (req, res) => {
    const id = parseBody(DocumentId, req.params.id, 'id');
    const { collection } = parseQuery(DeleteQuery, req.query);
    const accepted = await documents.remove(res.locals.tenant as string, collection, id);
    res.status(202).location(`/v1/ingestions/${accepted.ingestionId}`).json(accepted);
  });

  router.get('/v1/collections', async (_req, res) => {
    res.json({ collections: await documents.collections(res.locals.tenant as string) });
  });

  return router;
}
