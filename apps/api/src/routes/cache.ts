import { Router, type RequestHandler } from 'express';
import type { AnswerCache } from '@askq/shared';
import { unavailable } from '../unavailable.js';

/** `GET /v1/cache/stats`: the tenant's own cache. */
export function cacheStatsRoutes(cache: AnswerCache): Router {
  const router = Router();
  router.get('/v1/cache/stats', async (_req, res) => {
    res.json(await cache.stats(res.locals.tenant as string).catch(unavailable));
  });
  return router;
}

/** `DELETE /v1/cache`: admin only, clears every tenant's cache. Mounted before tenant auth. */
export function cacheClearRoutes(cache: AnswerCache, admin: RequestHandler): Router {
  const router = Router();
  router.delete('/v1/cache', admin, async (_req, res) => {
    res.json({ cleared: true, entries: await cache.clear().catch(unavailable) });
  });
  return router;
}
