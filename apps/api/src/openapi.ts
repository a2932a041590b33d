import {
  AskAcceptedSchema,
  AskRequest,
  CacheStatsSchema,
  CollectionViewSchema,
  ErrorBodySchema,
  EventDataSchemas,
  IngestAcceptedSchema,
  IngestionViewSchema,
  IngestRequest,
  QuestionViewSchema,
  CancelAnswerSchema,
} from '@askq/shared';

import { json, ref, schemaOf, type Json } from './openapi-schema.js';
import { openAiComponents, openAiPaths } from './openai/openapi.js';

const error = (description: string) => json(ref('Error'), description);

const ERRORS = {
  400: error(
    'INVALID_REQUEST: malformed JSON or a field failed validation (details: [{ path, message }])',
  ),
  401: error('UNAUTHORIZED: API_KEYS is set and the key is missing or wrong'),
  404: error('NOT_FOUND: no such id for this tenant (another tenant’s id is a 404 too)'),
  409: error('CONFLICT'),
  403: error(
    'QUOTA_EXCEEDED: the tenant would store more collections, documents or chunks than allowed',
  ),
  413: error(
    'PAYLOAD_TOO_LARGE: the body, a document’s metadata or its chunks exceed a limit (details: [{ path, message }])',
  ),
  415: error('UNSUPPORTED_MEDIA_TYPE: send application/json'),
  422: error('IDEMPOTENCY_MISMATCH: the Idempotency-Key was used with another body'),
  429: error(
    'RATE_LIMITED: a per-tenant limit (requests or reads per minute, questions in flight, open streams, queued ingestions); see Retry-After',
  ),
  503: error(
    'UNAVAILABLE: Redis or Chroma is down; or OVERLOADED (new questions): the queue is too long to answer one in time. See Retry-After',
  ),
};
const pick = (...codes: Array<keyof typeof ERRORS>) =>
  Object.fromEntries(codes.map((code) => [String(code), ERRORS[code]]));
const idParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description,
});

const EVENT_STREAM_DESCRIPTION = `Server-Sent Events (SPEC 3). Every event has an \`id:\` (its
position in the question's log), an \`event:\` name and JSON \`data:\`. \`retry: 2000\` comes first and a
\`: ping\` comment every 15 s. Resume with the \`Last-Event-ID\` header or \`?lastEventId=\`: the stream
continues after that event, from any API process. The response ends after \`completed\`, \`failed\` or
\`cancelled\`; a reconnect after it gets 204. On \`retry\`, drop the tokens received so far.`;

/**
 * The OpenAPI 3.1 document of the API, built from the same zod schemas the routes validate
 * requests with, so the reference cannot drift from the behaviour.
 */
export function createOpenApiDocument(options: { version: string }): Json {
  const events = Object.fromEntries(
    Object.entries(EventDataSchemas).map(([name, schema]) => [
      `Event_${name}`,
      {
        type: 'object',
        description: `The \`${name}\` event: \`event: ${name}\`, its JSON in \`data:\`.`,
        properties: { event: { const: name }, id: { type: 'string' }, data: schemaOf(schema) },
        required: ['event', 'id', 'data'],
      },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'askq',
      version: options.version,
      description:
        'Durable question answering over your own documents: POST a question, follow its answer over Server-Sent Events.',
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A tenant key from API_KEYS (when auth is on)',
        },
        admin: {
          type: 'http',
          scheme: 'bearer',
          description: 'ADMIN_API_KEY (basic auth with any user also works)',
        },
      },
      schemas: {
        Error: schemaOf(ErrorBodySchema),
        AskRequest: schemaOf(AskRequest, 'input'),
        AskAccepted: schemaOf(AskAcceptedSchema),
        Question: schemaOf(QuestionViewSchema),
        CancelAnswer: schemaOf(CancelAnswerSchema),
        IngestRequest: schemaOf(IngestRequest, 'input'),
        IngestAccepted: schemaOf(IngestAcceptedSchema),
        Ingestion: schemaOf(IngestionViewSchema),
        Collection: schemaOf(CollectionViewSchema),
        CacheStats: schemaOf(CacheStatsSchema),
        ...events,
        ...openAiComponents(),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/questions': {
        post: {
          summary: 'Ask a question',
          operationId: 'ask',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', maxLength: 255 },
              description: 'The same key and body within 24 h return the same question',
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: ref('AskRequest') } },
          },
          responses: {
            '202': json(
              ref('AskAccepted'),
              'Queued (or joined an identical running question: coalesced)',
            ),
            '200': json(
              ref('AskAccepted'),
              'Answered from the exact cache: cached, with the result',
            ),
            ...pick(400, 401, 409, 413, 415, 422, 429, 503),
          },
        },
      },
      '/v1/questions/{id}': {
        parameters: [idParam('id', 'The question id')],
        get: {
          summary: 'A question, its status and result',
          operationId: 'getQuestion',
          responses: {
            '200': json(ref('Question'), 'The question'),
            ...pick(400, 401, 404, 429, 503),
          },
        },
        delete: {
          summary: 'Cancel a question',
          operationId: 'cancelQuestion',
          responses: {
            '200': json(
              ref('CancelAnswer'),
              'It was queued: cancelled at once. Or other clients asked the same question and joined it (coalesced): this client lets go of it (`detached: true`) and it goes on for them',
            ),
            '202': json(
              ref('CancelAnswer'),
              'It is running: the cancel is recorded, the worker aborts it and writes `cancelled`',
            ),
            ...pick(400, 401, 404, 409, 503),
          },
        },
      },
      '/v1/questions/{id}/events': {
        parameters: [
          idParam('id', 'The question id'),
          { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
          { name: 'lastEventId', in: 'query', required: false, schema: { type: 'string' } },
        ],
        get: {
          summary: 'Follow a question (Server-Sent Events)',
          operationId: 'questionEvents',
          responses: {
            '200': {
              description: EVENT_STREAM_DESCRIPTION,
              content: {
                'text/event-stream': {
                  schema: { oneOf: Object.keys(events).map(ref) },
                },
              },
            },
            '204': { description: 'Nothing after the given id: the question has finished' },
            ...pick(400, 401, 404, 429, 503),
          },
        },
      },
      '/v1/documents': {
        post: {
          summary: 'Add or replace documents',
          operationId: 'ingest',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: ref('IngestRequest') } },
          },
          responses: {
            '202': json(ref('IngestAccepted'), 'Queued for chunking, embedding and storing'),
            ...pick(400, 401, 403, 409, 413, 415, 429, 503),
          },
        },
      },
      '/v1/documents/{id}': {
        parameters: [
          idParam('id', 'The document id'),
          {
            name: 'collection',
            in: 'query',
            required: false,
            schema: { type: 'string', default: 'default' },
          },
        ],
        delete: {
          summary: 'Delete a document and all its chunks',
          operationId: 'deleteDocument',
          responses: {
            '202': json(ref('IngestAccepted'), 'Queued; follow it as an ingestion'),
            ...pick(400, 401, 404, 429, 503),
          },
        },
      },
      '/v1/ingestions/{id}': {
        parameters: [idParam('id', 'The ingestion id')],
        get: {
          summary: 'An ingestion’s progress',
          operationId: 'getIngestion',
          responses: {
            '200': json(ref('Ingestion'), 'Progress and per-document outcome'),
            ...pick(401, 404, 429, 503),
          },
        },
      },
      '/v1/collections': {
        get: {
          summary: 'The tenant’s collections',
          operationId: 'listCollections',
          responses: {
            '200': json(
              {
                type: 'object',
                properties: { collections: { type: 'array', items: ref('Collection') } },
                required: ['collections'],
              },
              'Collections with their counts, version and embedder',
            ),
            ...pick(401, 429, 503),
          },
        },
      },
      '/v1/cache/stats': {
        get: {
          summary: 'The tenant’s cache statistics',
          operationId: 'cacheStats',
          responses: {
            '200': json(ref('CacheStats'), 'Hits and misses per layer, entries, seconds saved'),
            ...pick(401, 429, 503),
          },
        },
      },
      '/v1/cache': {
        delete: {
          summary: 'Clear every cached answer (admin)',
          operationId: 'clearCache',
          security: [{ admin: [] }],
          responses: {
            '200': json(
              {
                type: 'object',
                properties: { cleared: { const: true }, entries: { type: 'integer' } },
                required: ['cleared', 'entries'],
              },
              'Cleared',
            ),
            ...pick(401, 503),
          },
        },
      },
      ...openAiPaths(),
      '/healthz': {
        get: {
          summary: 'Alive',
          operationId: 'healthz',
          security: [],
          responses: { '200': { description: 'The process runs' } },
        },
      },
      '/readyz': {
        get: {
          summary: 'Ready: Redis and Chroma reachable',
          operationId: 'readyz',
          security: [],
          responses: {
            '200': {
              description: 'Both reachable; `warnings` when one nears a limit (Redis memory)',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['status', 'checks'],
                    properties: {
                      status: { type: 'string', enum: ['ready'] },
                      checks: { type: 'object', additionalProperties: { type: 'string' } },
                      warnings: { type: 'array', items: { type: 'string' } },
                    },
                  },
                },
              },
            },
            ...pick(503),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          operationId: 'metrics',
          security: [],
          responses: {
            '200': {
              description: 'Prometheus text format',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          operationId: 'openapi',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1' } },
        },
      },
      '/docs': {
        get: {
          summary: 'Interactive API reference',
          operationId: 'docs',
          security: [],
          responses: { '200': { description: 'HTML' } },
        },
      },
      '/': {
        get: {
          summary: 'The demo page',
          operationId: 'demo',
          security: [],
          responses: { '200': { description: 'HTML' } },
        },
      },
      '/admin/queues': {
        get: {
          summary: 'Bull Board (admin)',
          operationId: 'bullBoard',
          security: [{ admin: [] }],
          responses: { '200': { description: 'HTML' }, ...pick(401) },
        },
      },
    },
  };
}
