import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { Registry } from 'prom-client';
import { checkReadiness } from '@askq/shared';

/**
 * The worker's own small HTTP server: `/metrics` for Prometheus, `/healthz` (its BullMQ workers
 * run) and `/readyz` (Redis and Chroma answer too), in the API's shapes.
 */
export async function startMetricsServer(options: {
  port: number;
  host: string;
  registry: Registry;
  healthy: () => boolean;
  /** Each dependency's probe: resolves (with a warning, if any) when it answers. */
  readiness: Record<string, (signal: AbortSignal) => Promise<string | void>>;
  /** Each probe's bound. */
  readyTimeoutMs: number;
}): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      options.registry.metrics().then(
        (body) => res.writeHead(200, { 'Content-Type': options.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    } else if (req.method === 'GET' && path === '/healthz') {
      const ok = options.healthy();
      res
        .writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy' }));
    } else if (req.method === 'GET' && path === '/readyz') {
      void ready(options.readiness, options.healthy, options.readyTimeoutMs).then(({ ok, body }) =>
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json' }).end(body),
      );
    } else {
      res
        .writeHead(404, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'not found' } }));
    }
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : options.port };
}

async function ready(
  probes: Record<string, (signal: AbortSignal) => Promise<string | void>>,
  healthy: () => boolean,
  timeoutMs: number,
): Promise<{ ok: boolean; body: string }> {
  const workers = () => (healthy() ? Promise.resolve() : Promise.reject(new Error('not running')));
  const { ready: ok, checks, warnings } = await checkReadiness({ workers, ...probes }, timeoutMs);
  if (ok) {
    return {
      ok,
      body: JSON.stringify({ status: 'ready', checks, ...(warnings.length ? { warnings } : {}) }),
    };
  }
  const down = Object.keys(checks).filter((name) => checks[name] !== 'ok');
  const error = {
    code: 'UNAVAILABLE',
    message: `not ready: ${down.join(', ')} unreachable`,
    details: checks,
  };
  return { ok: false, body: JSON.stringify({ error }) };
}
