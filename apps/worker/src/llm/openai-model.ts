import OpenAI from 'openai';
import { AppError, withDeadline, type Route } from '@askq/shared';
import type { ChatModel, GenerationChunk } from './chat-model.js';
import { buildMessages, buildRewriteMessages } from './prompt.js';

/** Settings of an OpenAI-compatible chat model. */
export interface OpenAiModelOptions {
  baseURL: string;
  apiKey: string;
  models: Record<Route, string>;
  /** Whole answer, per attempt. */
  timeoutMs: number;
  /** Longest silence between chunks. */
  idleTimeoutMs: number;
  /** `max_tokens` of every request, so one answer's cost is bounded whatever it is asked. */
  maxTokens: number;
}

/**
 * Streams from any OpenAI-compatible server. The SDK's own retries are off (BullMQ attempts own
 * them) and its timeout does not bound a streamed body, so a total and an idle timer abort the
 * request themselves. Failures are classified so the queue knows whether to try again.
 */
export function createOpenAiModel(options: OpenAiModelOptions): ChatModel {
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    maxRetries: 0,
    timeout: options.timeoutMs,
  });

  return {
    modelFor: (route) => options.models[route],

    async *stream({ question, sources, route, signal, history }): AsyncGenerator<GenerationChunk> {
      // One controller for the three ways this call ends early: the caller's signal, the whole
      // answer's deadline, and silence between chunks (each signal costs; this runs per answer).
      const stop = new AbortController();
      let expired: 'total' | 'idle' | undefined;
      const expire = (which: 'total' | 'idle') => () => {
        expired ??= which;
        stop.abort();
      };
      const totalTimer = setTimeout(expire('total'), options.timeoutMs);
      const idleTimer = setTimeout(expire('idle'), options.idleTimeoutMs);
      const onAbort = () => stop.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      const timedOut = () =>
        new AppError(
          'LLM_TIMEOUT',
          expired === 'total'
            ? `the model did not finish within ${options.timeoutMs} ms`
            : `the model sent nothing for ${options.idleTimeoutMs} ms`,
          { retryable: true },
        );
      try {
        const stream = await client.chat.completions.create(
          {
            model: options.models[route],
            messages: buildMessages(question, sources, history),
            max_tokens: options.maxTokens,
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal: stop.signal },
        );
        for await (const chunk of stream) {
          idleTimer.refresh();
          const choice = chunk.choices[0];
          const text = choice?.delta?.content;
          if (text) yield { type: 'token', text };
          if (choice?.finish_reason) yield { type: 'end', reason: choice.finish_reason };
          if (chunk.usage) {
            yield {
              type: 'usage',
              promptTokens: chunk.usage.prompt_tokens,
              completionTokens: chunk.usage.completion_tokens,
            };
          }
        }
      } catch (e) {
        // A cancel ends the stream quietly; the caller checks `signal.aborted`.
        if (signal.aborted) return;
        if (expired) throw timedOut();
        throw classify(e);
      } finally {
        clearTimeout(totalTimer);
        clearTimeout(idleTimer);
        signal.removeEventListener('abort', onAbort);
      }
      // An aborted stream can end its loop without throwing: a cut-off answer must not pass.
      if (!signal.aborted && expired) throw timedOut();
    },

    /** One short, unstreamed request to the fast model, bounded by the idle timeout. */
    async rewrite({ question, history, signal }) {
      const completion = await withDeadline(options.idleTimeoutMs, signal, (bounded) =>
        client.chat.completions.create(
          {
            model: options.models.fast,
            messages: buildRewriteMessages(question, history),
            max_tokens: REWRITE_MAX_TOKENS,
            temperature: 0,
          },
          { signal: bounded },
        ),
      ).catch((e: unknown) => {
        throw classify(e);
      });
      return {
        text: completion.choices[0]?.message?.content ?? '',
        usage: {
          promptTokens: completion.usage?.prompt_tokens ?? 0,
          completionTokens: completion.usage?.completion_tokens ?? 0,
        },
      };
    },
  };
}

/** A rewritten question is one sentence; this bounds what a model that runs on can cost. */
const REWRITE_MAX_TOKENS = 200;

/** Maps SDK errors to codes: 429, 5xx and network errors are worth another attempt. */
function classify(e: unknown): AppError {
  if (e instanceof OpenAI.APIError && typeof e.status === 'number') {
    const status: number = e.status;
    if (status === 429 || status >= 500) {
      const headers = e.headers as Headers | undefined;
      const retryAfter = Number(headers?.get('retry-after'));
      return new AppError('LLM_UNAVAILABLE', `the model server answered ${status}`, {
        cause: e,
        retryable: true,
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
      });
    }
    const reason =
      status === 401 || status === 403 ? 'refused the credentials' : `answered ${status}`;
    return new AppError('LLM_REJECTED', `the model server ${reason}`, { cause: e });
  }
  return new AppError('LLM_UNAVAILABLE', 'the model server could not be reached', {
    cause: e,
    retryable: true,
  });
}
