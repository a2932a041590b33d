import { json, ref, schemaOf, type Json } from '../openapi-schema.js';
import { ChatCompletionRequest, ResponseRequest } from './requests.js';
import {
  ChatCompletionChunkSchema,
  ChatCompletionSchema,
  ModelListSchema,
  ModelSchema,
  OpenAiErrorSchema,
  ResponseObjectSchema,
} from './schemas.js';

const error = (description: string) => json(ref('OpenAiError'), description);
const ERRORS = {
  '400': error('invalid_request_error: a field failed validation (`param` names it)'),
  '401': error('authentication_error: the Bearer key is missing or wrong'),
  '404': error('not_found_error: an unknown model (`model_not_found`) or response id'),
  '409': error(
    'invalid_request_error: the question was cancelled, the previous response has not completed, or the response to cancel has already finished (x-should-retry: false)',
  ),
  '413': error('invalid_request_error: the body is over 1 MiB'),
  '415': error('invalid_request_error: send application/json'),
  '422': error(
    'invalid_request_error: the answer failed validation (VALIDATION_MODE=strict) or its content ran past its budget (x-should-retry: false)',
  ),
  '429': error('rate_limit_error: a per-tenant limit; see Retry-After'),
  '502': error(
    'server_error: the question failed at the model or embeddings server (x-should-retry: false)',
  ),
  '503': error(
    'server_error: Redis or Chroma is down, the queue is too long, or this API process is shutting down; see Retry-After',
  ),
  '504': error('server_error: the question ran past JOB_TIMEOUT_MS (x-should-retry: false)'),
};
const QUESTION_ID = {
  'X-Askq-Question-Id': {
    description: 'The askq question behind it: GET /v1/questions/{id} and its event stream',
    schema: { type: 'string' },
  },
};
const IDEMPOTENCY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', maxLength: 255 },
  description: 'The same key and body within 24 h give the same question (not a second one)',
};

const RESPONSE_EVENTS = `Server-Sent Events named by their \`type\`, each with a \`sequence_number\`
counted from 0 over the response's whole life, the same in every API process: resume with
\`GET /v1/responses/{id}?stream=true&starting_after=N\`. In order: \`response.created\`,
\`response.in_progress\`, per answer \`response.output_item.added\`, \`response.content_part.added\`,
\`response.output_text.delta\`…, then \`response.output_text.annotation.added\` (one \`file_citation\`
per [n]), \`response.output_text.done\`, \`response.content_part.done\`, \`response.output_item.done\`,
and \`response.completed\`, \`response.failed\`, or \`response.incomplete\` with status \`cancelled\`.
An answer askq discards (a retry, or a fast answer escalated to the smart model) ends with
\`response.content_part.done\` and \`response.output_item.done\` carrying it emptied, status
\`incomplete\`; the answer that stands follows as the next output item.`;

const CHAT_STREAM = `With \`stream: true\`: Server-Sent Events of \`chat.completion.chunk\`, the
last with \`finish_reason\` (and askq's \`sources\`), then the usage chunk when
\`stream_options.include_usage\` is set, then \`data: [DONE]\`. A failed or cancelled question sends
\`data: {"error": {...}}\` instead, which OpenAI's SDKs raise. An answer askq discards after
streaming it is followed by "\\n\\n---\\n\\n" and the answer that stands (unless that begins with it).`;

/** Schemas of the OpenAI-compatible routes, for components.schemas. */
export function openAiComponents(): Record<string, Json> {
  return {
    OpenAiError: schemaOf(OpenAiErrorSchema),
    Model: schemaOf(ModelSchema),
    ModelList: schemaOf(ModelListSchema),
    ChatCompletionRequest: schemaOf(ChatCompletionRequest, 'input'),
    ChatCompletion: schemaOf(ChatCompletionSchema),
    ChatCompletionChunk: schemaOf(ChatCompletionChunkSchema),
    ResponseRequest: schemaOf(ResponseRequest, 'input'),
    Response: schemaOf(ResponseObjectSchema),
  };
}

const responseId = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: 'The response id (resp_<question id>)',
};

/** Paths of the OpenAI-compatible routes. */
export function openAiPaths(): Record<string, Json> {
  return {
    '/v1/models': {
      get: {
        summary: 'Models (OpenAI): one per collection',
        description:
          '`askq` asks the default collection, `askq/<collection>` another; append `:fast` or `:smart` to pick the route (without, the router picks).',
        operationId: 'listModels',
        tags: ['OpenAI-compatible'],
        responses: { '200': json(ref('ModelList'), 'The models'), ...pick('401', '429', '503') },
      },
    },
    '/v1/models/{model}': {
      parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        summary: 'A model (OpenAI)',
        operationId: 'getModel',
        tags: ['OpenAI-compatible'],
        responses: { '200': json(ref('Model'), 'The model'), ...pick('401', '404', '429', '503') },
      },
    },
    '/v1/chat/completions': {
      post: {
        summary: 'Chat completion (OpenAI): the last user message is the question',
        description:
          'The user and assistant messages before it are the conversation (the latest CONVERSATION_MAX_TURNS, within CONVERSATION_MAX_CHARS); system and developer messages are ignored: askq’s own instructions keep answers to the sources. Fields askq has no use for (temperature, …) are accepted and ignored.',
        operationId: 'createChatCompletion',
        tags: ['OpenAI-compatible'],
        parameters: [IDEMPOTENCY],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref('ChatCompletionRequest') } },
        },
        responses: {
          '200': {
            description: `The completion once answered. ${CHAT_STREAM}`,
            headers: QUESTION_ID,
            content: {
              'application/json': { schema: ref('ChatCompletion') },
              'text/event-stream': { schema: ref('ChatCompletionChunk') },
            },
          },
          ...pick('400', '401', '404', '409', '413', '415', '422', '429', '502', '503', '504'),
        },
      },
    },
    '/v1/responses': {
      post: {
        summary: 'Create a response (OpenAI Responses API)',
        description:
          '`input` is the question, or messages whose last (the user’s) is; `previous_response_id` continues a conversation. Every response is durable: `background: true` answers at once (queued), otherwise once it has ended; either way it can be polled, resumed and cancelled, and is kept RESULT_TTL_SECONDS.',
        operationId: 'createResponse',
        tags: ['OpenAI-compatible'],
        parameters: [IDEMPOTENCY],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: ref('ResponseRequest') } },
        },
        responses: {
          '200': {
            description: `The response. With \`stream: true\`: ${RESPONSE_EVENTS}`,
            headers: QUESTION_ID,
            content: {
              'application/json': { schema: ref('Response') },
              'text/event-stream': { schema: { type: 'object' } },
            },
          },
          ...pick('400', '401', '404', '409', '413', '415', '429', '503'),
        },
      },
    },
    '/v1/responses/{id}': {
      parameters: [
        responseId,
        { name: 'stream', in: 'query', required: false, schema: { enum: ['true', 'false'] } },
        {
          name: 'starting_after',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: -1 },
          description: 'With stream=true: the events after this sequence_number',
        },
      ],
      get: {
        summary: 'Poll a response, or resume its stream (OpenAI)',
        operationId: 'getResponse',
        tags: ['OpenAI-compatible'],
        responses: {
          '200': {
            description: `The response as it stands; with stream=true its events (${RESPONSE_EVENTS.split('.')[0]}).`,
            headers: QUESTION_ID,
            content: {
              'application/json': { schema: ref('Response') },
              'text/event-stream': { schema: { type: 'object' } },
            },
          },
          ...pick('400', '401', '404', '429', '503'),
        },
      },
    },
    '/v1/responses/{id}/cancel': {
      parameters: [responseId],
      post: {
        summary: 'Cancel a response (OpenAI)',
        operationId: 'cancelResponse',
        tags: ['OpenAI-compatible'],
        responses: {
          '200': json(
            ref('Response'),
            'Cancelled at once when queued; when running, the cancel is recorded and it ends `cancelled` shortly',
          ),
          ...pick('401', '404', '409', '429', '503'),
        },
      },
    },
  };
}

function pick(...codes: Array<keyof typeof ERRORS>) {
  return Object.fromEntries(codes.map((code) => [code, ERRORS[code]]));
}
