import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Registry } from 'prom-client';
import type { AnswerCache, AskqMetrics, EventLog, Logger } from '@askq/shared';
import type { EventHub } from './event-hub.js';
import { authenticate, type ApiKeys } from './auth.js';
import { errorHandler, notFoundRoute, requireJson } from './http.js';
import type { Idempotency } from './idempotency.js';
import type { DocumentService } from './document-service.js';
import type { QuestionService } from './question-service.js';
import { awaitAdmission } from './limits.js';
import type { TenantQuotas } from './quotas.js';
import { requireAdmin } from './routes/admin.js';
import { cacheClearRoutes, cacheStatsRoutes } from './routes/cache.js';
import { docsRoutes } from './routes/docs.js';
import { documentRoutes } from './routes/documents.js';
import { eventRoutes } from './routes/events.js';
import { createAsking } from './asking.js';
import { createFollower, type EventStreamOptions } from './follow.js';
import { openAiRoutes } from './routes/openai.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { questionRoutes } from './routes/questions.js';
import type { SseRegistry } from './sse.js';

/** Everything the HTTP layer needs; createApp reads no environment and never listens. */
export interface AppDeps {
  log: Logger;
  questions: QuestionService;
  documents: DocumentService;
  events: EventLog;
  hub: EventHub;
  streams: SseRegistry;
  registry: Registry;
  metrics: AskqMetrics;
  cache: AnswerCache;
  /** The per-tenant rate limit, applied to the routes that create work. */
  rateLimit: RequestHandler;
  /** The per-tenant allowance of GET requests (reads and event streams), apart from the above. */
  readRateLimit: RequestHandler;
  quotas: TenantQuotas;
  idempotency: Idempotency;
  /** ADMIN_API_KEY, for admin API routes (cache clear). */
  adminKey: string | undefined;
  /** The OpenAPI document served at /openapi.json. */
  openapi: Record<string, unknown>;
  /** Tenants by key; empty means auth is off (every request is tenant `default`). */
  apiKeys: ApiKeys;
  /** Mounted at /admin (Bull Board); the composition root builds it since it needs the queues. */
  admin?: Router;
  readiness: Record<string, ReadinessCheck>;
  /** Each readiness probe's bound. */
  readyTimeoutMs: number;
  sse: EventStreamOptions;
  /**
   * Largest accepted JSON bodies (SPEC 2): 64 KiB for a question, 1 MiB for documents and for
   * OpenAI-style requests (chat clients send the whole conversation every time).
   */
  bodyLimits: { question: string; documents: string; conversation: string };
}

/** Builds the Express app of the API. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = performance.now();
    res.once('close', () => {
      // The route pattern, not the path: ids would make the label set unbounded.
      const pattern = (req.route as { path?: string } | undefined)?.path;
      const route = pattern === undefined ? '(unmatched)' : `${req.baseUrl}${pattern}`;
      deps.metrics.httpDuration
        .labels(req.method, route, String(res.statusCode))
        .observe((performance.now() - started) / 1_000);
    });
    next();
  });
  // Probes and metrics answer without a key: orchestrators and Prometheus call them. Admin routes
  // have their own key.
  app.use(
    healthRoutes({
      checks: deps.readiness,
      timeoutMs: deps.readyTimeoutMs,
      registry: deps.registry,
    }),
  );
  app.use(docsRoutes(deps.openapi));
  if (deps.admin) app.use('/admin', deps.admin);
  app.use(cacheClearRoutes(deps.cache, requireAdmin(deps.adminKey, deps.apiKeys.length > 0)));
  app.use(authenticate(deps.apiKeys));
  app.use(requireJson);
  // Every GET (and HEAD, which Express serves with the GET handler) past authentication draws
  // from the tenant's read allowance: a polling loop or an EventSource reconnecting without pause
  // cannot starve the others. The probes above do not.
  const readRateLimit = deps.readRateLimit;
  app.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    readRateLimit(req, res, () => awaitAdmission(req, res, next));
  });

  const asking = createAsking(deps.questions, deps.idempotency);
  const follower = createFollower({
    hub: deps.hub,
    events: deps.events,
    streams: deps.streams,
    log: deps.log,
    metrics: deps.metrics,
    quotas: deps.quotas,
    options: deps.sse,
  });
  app.use(
    questionRoutes(deps.questions, {
      bodyLimit: deps.bodyLimits.question,
      rateLimit: deps.rateLimit,
      asking,
    }),
  );
  app.use(
    openAiRoutes({
      questions: deps.questions,
      documents: deps.documents,
      asking,
      follower,
      events: deps.events,
      rateLimit: deps.rateLimit,
      bodyLimit: deps.bodyLimits.conversation,
    }),
  );
  app.use(cacheStatsRoutes(deps.cache));
  app.use(
    documentRoutes(deps.documents, {
      bodyLimit: deps.bodyLimits.documents,
      rateLimit: deps.rateLimit,
    }),
  );
  app.use(
    eventRoutes({
      questions: deps.questions,
      events: deps.events,
      follower,
      metrics: deps.metrics,
      retryMs: deps.sse.retryMs,
      drainTimeoutMs: deps.sse.heartbeatMs * 2,
    }),
  );

  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
