import {
  AppError,
  type LoggedEvent,
  type PublicError,
  type QuestionResult,
  type Source,
} from '@askq/shared';
import { questionFailure, toOpenAiError } from './errors.js';

/** What a chat completion says of the question behind it. */
export interface ChatIdentity {
  questionId: string;
  /** The model id the client asked for, echoed back as OpenAI does. */
  model: string;
  /** Epoch seconds. */
  created: number;
}

/**
 * Shown before a regenerated answer: a chat client cannot take back text it has shown, so when
 * askq discards an answer it had streamed (a `retry`: a failed attempt, or a fast answer that
 * failed validation) and the new one does not begin with it, the new one follows this rule.
 */
export const REGENERATED = '\n\n---\n\n';

/** `chat.completion` for a completed question (an unstreamed request). */
export function chatCompletion(identity: ChatIdentity, result: QuestionResult) {
  return {
    id: completionId(identity),
    object: 'chat.completion' as const,
    created: identity.created,
    model: identity.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: result.answer, refusal: null },
        logprobs: null,
        finish_reason: 'stop' as const,
      },
    ],
    usage: usageOf(result),
    // askq's extensions: SDKs ignore fields they do not know.
    sources: result.sources,
    validation: result.validation,
  };
}

/**
 * Translates a question's events into `chat.completion.chunk` frames as they come: its answer
 * tokens as content deltas, then a last chunk with `finish_reason` (and the sources), the usage
 * chunk when asked for, and `[DONE]`. A failed or cancelled question ends with an `error` frame,
 * which OpenAI's SDKs raise as an APIError.
 */
export function createChatStream(identity: ChatIdentity, options: { includeUsage: boolean }) {
  const id = completionId(identity);
  const frame = (body: object) => `data: ${JSON.stringify(body)}\n\n`;
  const chunk = (delta: object, finish: string | null, extra: object = {}) =>
    frame({
      id,
      object: 'chat.completion.chunk',
      created: identity.created,
      model: identity.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...extra,
    });
  const text = createReconciler();
  let started = false;
  let sources: Source[] = [];

  const content = (delta: string) => {
    if (delta === '') return '';
    const role = started ? {} : { role: 'assistant' };
    started = true;
    return chunk({ ...role, content: delta }, null);
  };
  const end = (body: object) => `${frame(body)}data: [DONE]\n\n`;

  return (event: LoggedEvent): string => {
    switch (event.event) {
      case 'sources':
        sources = (JSON.parse(event.data) as { sources: Source[] }).sources;
        return '';
      case 'token':
        return content(text.token((JSON.parse(event.data) as { text: string }).text));
      case 'retry':
        text.retry();
        return '';
      case 'completed': {
        const { result } = JSON.parse(event.data) as { result: QuestionResult };
        const last = chunk({}, 'stop', { sources: result.sources ?? sources });
        const usage = options.includeUsage
          ? frame({
              id,
              object: 'chat.completion.chunk',
              created: identity.created,
              model: identity.model,
              choices: [],
              usage: usageOf(result),
            })
          : '';
        const rest = content(text.final(result.answer));
        // An empty answer has no content chunk: the role must still come first, as in OpenAI's.
        const opener = started ? '' : chunk({ role: 'assistant', content: '' }, null);
        started = true;
        return `${opener}${rest}${last}${usage}data: [DONE]\n\n`;
      }
      case 'failed': {
        const { error } = JSON.parse(event.data) as { error: PublicError };
        return end(toOpenAiError(questionFailure(error)).body);
      }
      case 'cancelled':
        return end(toOpenAiError(new AppError('CANCELLED', 'the question was cancelled')).body);
      default:
        return '';
    }
  };
}

/**
 * What of an answer's text a client that only appends has not been shown yet. After a `retry`
 * the new attempt's text is held while it repeats what was shown (a re-run of the same answer
 * streams on seamlessly); once it says something else, it is shown whole after {@link REGENERATED}.
 */
export function createReconciler() {
  let shown = '';
  // Where the current attempt's text starts in `shown`.
  let base = 0;
  let attempt = '';
  let catchingUp = false;

  const advance = (): string => {
    const before = shown.slice(base);
    if (catchingUp) {
      if (before.startsWith(attempt)) return '';
      catchingUp = false;
      if (!attempt.startsWith(before)) {
        base = shown.length + REGENERATED.length;
        shown += REGENERATED + attempt;
        return REGENERATED + attempt;
      }
    }
    if (!attempt.startsWith(before)) {
      // Only the final answer can differ from its own tokens (it is the whole answer at once).
      base = shown.length + REGENERATED.length;
      shown += REGENERATED + attempt;
      return REGENERATED + attempt;
    }
    const delta = attempt.slice(before.length);
    shown += delta;
    return delta;
  };

  return {
    token(text: string): string {
      attempt += text;
      return advance();
    },
    retry(): void {
      attempt = '';
      catchingUp = true;
    },
    /** The answer as completed: whatever of it the client has not seen. */
    final(answer: string): string {
      attempt = answer;
      // Held text that the final answer does not continue must be shown as regenerated too.
      if (catchingUp && shown.slice(base) !== answer) catchingUp = false;
      return advance();
    },
  };
}

function completionId(identity: ChatIdentity): string {
  return `chatcmpl-${identity.questionId}`;
}

function usageOf(result: QuestionResult) {
  const { promptTokens, completionTokens } = result.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}
