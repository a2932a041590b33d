import { Router } from 'express';
import type { Registry } from 'prom-client';
import { AppError } from '@askq/shared';

/** Probes one dependency; resolves with "ok" or throws. */
export type ReadinessCheck = () => Promise<void>;

/** `/healthz` (the process is alive), `/readyz` (its dependencies answer), `/metrics`. */
export function healthRoutes(deps: {
  checks: Record<string, ReadinessCheck>;
  registry: Registry;
}): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const entries = await Promise.all(
      Object.entries(deps.checks).map(async ([name, check]) => {
        try {
          await check();
          return [name, 'ok'] as const;
        } catch (e) {
          return [name, `down: ${e instanceof Error ? e.message : String(e)}`] as const;
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    const down = entries.filter(([, state]) => state !== 'ok').map(([name]) => name);
    if (down.length > 0) {
      throw new AppError('UNAVAILABLE', `not ready: ${down.join(', ')} unreachable`, {
        details: checks,
        retryAfterSeconds: 1,
      });
    }
    res.json({ status: 'ready', checks });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  return router;
}
