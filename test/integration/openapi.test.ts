import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ZodType } from 'zod';
import {
  AskAcceptedSchema,
  CacheStatsSchema,
  CollectionViewSchema,
  ErrorBodySchema,
  IngestionViewSchema,
  QuestionViewSchema,
} from '@askq/shared';
import { createApp, type AppDeps } from '../../apps/api/src/app.js';
import { createOpenApiDocument } from '../../apps/api/src/openapi.js';
import {
  ChatCompletionSchema,
  ModelListSchema,
  OpenAiErrorSchema,
  ResponseObjectSchema,
} from '../../apps/api/src/openai/schemas.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

let askq: TestAskq;
let document: { paths: Record<string, Record<string, unknown>>; openapi: string };

beforeAll(async () => {
  askq = await startAskq();
  document = (await (await fetch(`${askq.url}/openapi.json`)).json()) as typeof document;
});
afterAll(async () => {
  await askq?.stop();
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every (method, path) the Express app routes, walking routers mounted at the root. */
function routesOf(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      const path = layer.route.path.replace(/:(\w+)/g, '{$1}');
      return Object.keys(layer.route.methods).map((method) => `${method.toUpperCase()} ${path}`);
    }
    return layer.handle?.stack ? routesOf(layer.handle.stack) : [];
  });
}

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1 according to a real validator', async () => {
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the app serves', () => {
    // The app's own routers, registered as main.ts registers them (deps are not called).
    const noop = () => undefined;
    const app = createApp({
      log: { info: noop, warn: noop, error: noop } as never,
      questions: {} as never,
      documents: {} as never,
      events: {} as never,
      hub: {} as never,
      streams: {} as never,
      registry: {} as never,
      metrics: {} as never,
      readiness: {},
      readyTimeoutMs: 1_000,
      sse: { heartbeatMs: 1, maxBufferBytes: 1, retryMs: 1 },
      bodyLimits: { question: '1kb', documents: '1kb', conversation: '1kb' },
      cache: {} as never,
      rateLimit: (_req, _res, next) => next(),
      readRateLimit: (_req, _res, next) => next(),
      quotas: {} as never,
      idempotency: {} as never,
      adminKey: undefined,
      apiKeys: [],
      openapi: createOpenApiDocument({ version: 'test' }),
    } satisfies AppDeps);
    const served = routesOf((app as unknown as { router: { stack: Layer[] } }).router.stack);
    expect(served.length).toBeGreaterThan(10);
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => ['get', 'post', 'put', 'patch', 'delete'].includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    // Asset routes under /docs serve the reference page's files, not the API.
    const missing = served.filter((r) => !documented.includes(r) && r !== 'GET /docs/reference.js');
    expect(missing).toEqual([]);
  });

  it('describes the event stream with every event type', () => {
    const events = document.paths['/v1/questions/{id}/events']!.get as {
      responses: { '200': { content: Record<string, { schema: { oneOf: unknown[] } }> } };
    };
    expect(events.responses['200'].content['text/event-stream']!.schema.oneOf).toHaveLength(8);
  });

  it('is served with an interactive reference at /docs that loads offline', async () => {
    const page = await fetch(`${askq.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const asset of [...html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!)) {
      expect((await fetch(askq.url + asset)).status, asset).toBe(200);
    }
  });
});

describe('real responses match the documented schemas', () => {
  const check = (schema: ZodType, body: unknown) => {
    const parsed = schema.safeParse(body);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  };

  it('for questions, documents, collections, cache stats and errors', async () => {
    const ingest = await askq.post('/v1/documents', {
      documents: [{ id: 'doc', title: 'Doc', text: 'Tides follow the Moon.' }],
    });
    const { ingestionId } = (await ingest.json()) as { ingestionId: string };
    const asked = await askq.post('/v1/questions', { question: 'What do tides follow?' });
    const accepted = await asked.json();
    check(AskAcceptedSchema, accepted);
    const { id, links } = accepted as { id: string; links: { events: string } };
    await followEvents(askq.url + links.events);
    check(QuestionViewSchema, await (await fetch(`${askq.url}/v1/questions/${id}`)).json());
    check(
      IngestionViewSchema,
      await (await fetch(`${askq.url}/v1/ingestions/${ingestionId}`)).json(),
    );
    const collections = (await (await fetch(`${askq.url}/v1/collections`)).json()) as {
      collections: unknown[];
    };
    for (const c of collections.collections) check(CollectionViewSchema, c);
    check(CacheStatsSchema, await (await fetch(`${askq.url}/v1/cache/stats`)).json());
    check(ErrorBodySchema, await (await askq.post('/v1/questions', { question: '' })).json());
    // A cached answer: 200 with the result.
    const cached = await askq.post('/v1/questions', { question: 'What do tides follow?' });
    expect(cached.status).toBe(200);
    check(AskAcceptedSchema, await cached.json());
  });

  it('for the OpenAI-compatible routes', async () => {
    check(ModelListSchema, await (await fetch(`${askq.url}/v1/models`)).json());
    const chat = await askq.post('/v1/chat/completions', {
      model: 'askq',
      messages: [{ role: 'user', content: 'What do tides follow?' }],
    });
    expect(chat.status).toBe(200);
    check(ChatCompletionSchema, await chat.json());
    const created = await askq.post('/v1/responses', {
      model: 'askq',
      input: 'What follows the Moon?',
    });
    const response = (await created.json()) as { id: string };
    check(ResponseObjectSchema, response);
    check(
      ResponseObjectSchema,
      await (await fetch(`${askq.url}/v1/responses/${response.id}`)).json(),
    );
    check(
      OpenAiErrorSchema,
      await (await askq.post('/v1/chat/completions', { model: 'gpt-4o' })).json(),
    );
  });
});
