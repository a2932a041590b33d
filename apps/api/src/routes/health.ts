import { Router } from 'express';
import type { Registry } from 'prom-client';
import { AppError, checkReadiness } from '@askq/shared';

/** Probes one dependency: resolves (with a warning, if any) when it answers, else throws. */
export type ReadinessCheck = (signal: AbortSignal) => Promise<string | void>;

/** `/healthz` (the process is alive), `/readyz` (its dependencies answer), `/metrics`. */
export function healthRoutes(deps: {
  checks: Record<string, ReadinessCheck>;
  timeoutMs: number;
  registry: Registry;
}): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const { ready, checks, warnings } = await checkReadiness(deps.checks, deps.timeoutMs);
    if (!ready) {
      const down = Object.keys(checks).filter((name) => checks[name] !== 'ok');
      throw new AppError('UNAVAILABLE', `not ready: ${down.join(', ')} unreachable`, {
        details: checks,
        retryAfterSeconds: 1,
      });
    }
    res.json({ status: 'ready', checks, ...(warnings.length > 0 ? { warnings } : {}) });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  return router;
}
