import { z } from 'zod';
import { SourceSchema, ValidationSchema } from '@askq/shared';

// The OpenAI-compatible routes' response bodies as zod schemas, for the OpenAPI document and for
// the test that checks real responses against it. They list what askq sends; OpenAI's own
// reference describes the same objects with more optional fields.

export const OpenAiErrorSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string().describe('authentication_error, invalid_request_error, not_found_error, …'),
    code: z.string().nullable(),
    param: z.string().nullable().describe('The field at fault, when one is'),
  }),
});

export const ModelSchema = z.object({
  id: z.string().describe('askq (the default collection) or askq/<collection>'),
  object: z.literal('model'),
  created: z.number(),
  owned_by: z.string(),
});

export const ModelListSchema = z.object({ object: z.literal('list'), data: z.array(ModelSchema) });

const ChatUsage = z.object({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
});

export const ChatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      message: z.object({
        role: z.literal('assistant'),
        content: z.string(),
        refusal: z.null(),
      }),
      logprobs: z.null(),
      finish_reason: z.literal('stop'),
    }),
  ),
  usage: ChatUsage,
  sources: z.array(SourceSchema).describe('askq extension: the passages the answer cites as [n]'),
  validation: ValidationSchema.describe('askq extension: the answer’s checks'),
});

export const ChatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      delta: z.object({ role: z.literal('assistant').optional(), content: z.string().optional() }),
      logprobs: z.null(),
      finish_reason: z.literal('stop').nullable(),
    }),
  ),
  usage: ChatUsage.optional().describe('On the last chunk (choices: []) with include_usage'),
  sources: z.array(SourceSchema).optional().describe('askq extension, on the finish_reason chunk'),
});

const OutputText = z.object({
  type: z.literal('output_text'),
  text: z.string(),
  annotations: z.array(
    z.object({
      type: z.literal('file_citation'),
      file_id: z.string().describe('The cited document’s id'),
      filename: z.string().describe('Its title (or id)'),
      index: z.number().describe('Where the citation mark is in the text'),
    }),
  ),
  logprobs: z.array(z.never()),
});

export const ResponseObjectSchema = z.object({
  id: z.string().describe('resp_<question id>'),
  object: z.literal('response'),
  created_at: z.number(),
  status: z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled']),
  background: z.null(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  incomplete_details: z.null(),
  instructions: z.null(),
  max_output_tokens: z.null(),
  metadata: z.object({}),
  model: z.string(),
  output: z.array(
    z.object({
      id: z.string(),
      type: z.literal('message'),
      role: z.literal('assistant'),
      status: z
        .enum(['in_progress', 'completed', 'incomplete'])
        .describe('incomplete: an answer askq discarded (its text emptied)'),
      content: z.array(OutputText),
    }),
  ),
  output_text: z.string(),
  parallel_tool_calls: z.literal(false),
  previous_response_id: z.string().nullable(),
  temperature: z.null(),
  text: z.object({ format: z.object({ type: z.literal('text') }) }),
  tool_choice: z.literal('auto'),
  tools: z.array(z.never()),
  top_p: z.null(),
  truncation: z.literal('disabled'),
  usage: z
    .object({
      input_tokens: z.number(),
      input_tokens_details: z.object({ cached_tokens: z.number() }),
      output_tokens: z.number(),
      output_tokens_details: z.object({ reasoning_tokens: z.number() }),
      total_tokens: z.number(),
    })
    .nullable(),
  sources: z.array(SourceSchema).describe('askq extension: the passages retrieved'),
  question_id: z.string().describe('askq extension: the question behind it'),
});
