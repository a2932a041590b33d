import { z } from 'zod';
import { AppError, type Turn } from '@askq/shared';

// OpenAI's request bodies carry many fields askq has no use for (temperature, top_p, user,
// metadata, ...): clients send them by default, so they are accepted and ignored (looseObject).
// Those askq reads are checked, and so are those whose meaning it cannot honour (n > 1, tools).

const TextPart = z.looseObject({
  type: z.enum(['text', 'input_text', 'output_text']),
  text: z.string(),
});
const Content = z.union([
  z.string(),
  z.array(TextPart, { error: 'only text content parts are supported' }),
  z.null(),
]);
const Message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: Content.optional(),
});
const Messages = z
  .array(Message)
  .min(1, 'at least one message')
  .max(1_000, 'at most 1000 messages');
const NoTools = z
  .array(z.unknown())
  .max(0, 'askq answers from its documents and calls no tools')
  .nullish();

/** `POST /v1/chat/completions`, the fields askq reads. */
export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1).max(300),
  messages: Messages,
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.literal(1, 'askq gives one answer (n: 1)').nullish(),
  tools: NoTools,
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

/** `POST /v1/responses`, the fields askq reads. */
export const ResponseRequest = z.looseObject({
  model: z.string().min(1).max(300),
  input: z.union([z.string(), Messages]),
  background: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  previous_response_id: z.string().max(200).nullish(),
  tools: NoTools,
});
export type ResponseRequest = z.infer<typeof ResponseRequest>;

// Within what a native question's history accepts; chat clients resend whole conversations.
const MAX_TURNS = 100;
const MAX_TURN_CHARS = 20_000;

/**
 * A conversation as askq takes it: the last message is the question (it must be the user's),
 * the user and assistant messages before it are the earlier turns. System and developer
 * messages are left out: askq's own instructions keep answers grounded in the sources, and a
 * client's cannot replace them.
 */
export function toQuestion(
  messages: z.infer<typeof Messages>,
  path: string,
): { question: string; history: Turn[] } {
  const text = (m: z.infer<typeof Message>) =>
    typeof m.content === 'string'
      ? m.content
      : (m.content ?? []).map((part) => part.text).join('\n');
  const last = messages.at(-1)!;
  if (last.role !== 'user') {
    throw new AppError('INVALID_REQUEST', 'the last message must be the user’s question', {
      details: [{ path: `${path}.${messages.length - 1}.role`, message: 'must be "user"' }],
    });
  }
  const history: Turn[] = [];
  for (const m of messages.slice(0, -1)) {
    if (m.role === 'user' || m.role === 'assistant') {
      // Only the latest turns are kept in the end (boundHistory); a turn is cut to its end.
      history.push({ role: m.role, content: text(m).slice(-MAX_TURN_CHARS) });
    }
  }
  return { question: text(last), history: history.slice(-MAX_TURNS) };
}
