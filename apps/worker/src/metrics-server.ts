import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { Registry } from 'prom-client';

/**
 * The worker's own small HTTP server: `/metrics` for Prometheus, `/healthz` (its BullMQ workers
 * run) and `/readyz` (Redis and Chroma answer too), in the API's shapes.
 */
export async function startMetricsServer(options: {
  port: number;
  host: string;
  registry: Registry;
  healthy: () => boolean;
  /** Each dependency's probe: resolves when it answers. */
  readiness: Record<string, () => Promise<void>>;
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
      void ready(options.readiness, options.healthy).then(({ ok, body }) =>
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
  probes: Record<string, () => Promise<void>>,
  healthy: () => boolean,
): Promise<{ ok: boolean; body: string }> {
  const checks: Record<string, string> = { workers: healthy() ? 'ok' : 'down: not running' };
  await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      checks[name] = await probe().then(
        () => 'ok',
        (e: unknown) => `down: ${e instanceof Error ? e.message : String(e)}`,
      );
    }),
  );
  const down = Object.keys(checks).filter((name) => checks[name] !== 'ok');
  if (down.length === 0) return { ok: true, body: JSON.stringify({ status: 'ready', checks }) };
  const error = {
    code: 'UNAVAILABLE',
    message: `not ready: ${down.join(', ')} unreachable`,
    details: checks,
  };
  return { ok: false, body: JSON.stringify({ error }) };
}
