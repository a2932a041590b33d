import type { LoggedEvent, Source } from '@askq/shared';
import { APIError } from 'openai/error';
import { ChatCompletionStream } from 'openai/lib/ChatCompletionStream';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Stream } from 'openai/streaming';
import { describe, expect, it } from 'vitest';
import { log } from './event-log.fixture.js';
import { REGENERATED, createChatStream, createReconciler } from './chat-stream.js';

const source = (n: number): Source => ({
  documentId: `doc-${n}`,
  chunkId: `doc-${n}#0`,
  title: `Doc ${n}`,
  text: `text ${n}`,
  score: 0.9,
});

const identity = { questionId: 'q-1', model: 'askq', created: 1_700_000_000 };

/** Runs a log through a chat stream; returns the raw text a client would have received. */
function stream(events: LoggedEvent[], includeUsage = false): string {
  const translate = createChatStream(identity, { includeUsage });
  return events.map(translate).join('');
}

/** SSE frames as a client parses them: split on blank lines, `data: ` stripped, JSON parsed. */
function frames(raw: string): unknown[] {
  return raw
    .split('\n\n')
    .filter((frame) => frame !== '')
    .map((frame) => {
      expect(frame.startsWith('data: ')).toBe(true);
      const data = frame.slice('data: '.length);
      return data === '[DONE]' ? '[DONE]' : (JSON.parse(data) as unknown);
    });
}

interface Chunk {
  id: string;
  object: string;
  choices: Array<{
    index: number;
    delta: { role?: string; content?: string };
    finish_reason: string | null;
  }>;
  sources?: Source[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** The text an appending client shows: every content delta, in order. */
const shownText = (parsed: unknown[]) =>
  (parsed.filter((f) => f !== '[DONE]') as Chunk[])
    .flatMap((c) => c.choices.map((choice) => choice.delta.content ?? ''))
    .join('');

describe('createReconciler', () => {
  // Feeds tokens, retries and a final answer; returns what the client is shown, joined.
  function reconcile(steps: Array<string | { retry: true } | { final: string }>): string {
    const r = createReconciler();
    return steps
      .map((step) => {
        if (typeof step === 'string') return r.token(step);
        if ('retry' in step) {
          r.retry();
          return '';
        }
        return r.final(step.final);
      })
      .join('');
  }

  it('passes tokens through and adds nothing when the final answer is what they said', () => {
    const r = createReconciler();
    expect(r.token('Hello ')).toBe('Hello ');
    expect(r.token('world')).toBe('world');
    expect(r.final('Hello world')).toBe('');
  });

  it('sends the rest when the final answer goes on past its tokens', () => {
    expect(reconcile(['Hello', { final: 'Hello world' }])).toBe('Hello world');
  });

  it('continues a retry that repeats the shown text seamlessly, repeating nothing', () => {
    // The new attempt's text is held while it only repeats what the client already shows;
    // what comes after that is appended as if the answer had never been interrupted.
    const r = createReconciler();
    expect(r.token('Paris is ')).toBe('Paris is ');
    expect(r.token('the capital')).toBe('the capital');
    r.retry();
    expect(r.token('Paris ')).toBe('');
    expect(r.token('is the capital')).toBe('');
    expect(r.token(' of France.')).toBe(' of France.');
    expect(r.final('Paris is the capital of France.')).toBe('');
  });

  it('holds a retry that repeats only part of the shown text and ends there', () => {
    // The final answer equals the shown text exactly: nothing more to show.
    expect(
      reconcile([
        'Paris is the capital',
        { retry: true },
        'Paris is',
        { final: 'Paris is the capital' },
      ]),
    ).toBe('Paris is the capital');
  });

  it('shows a diverging retry whole after the REGENERATED separator', () => {
    const r = createReconciler();
    expect(r.token('Paris is in Spain')).toBe('Paris is in Spain');
    r.retry();
    // Held while it agrees with what was shown...
    expect(r.token('Paris is ')).toBe('');
    // ...then shown from its very start once it says something else.
    expect(r.token('in France')).toBe(`${REGENERATED}Paris is in France`);
    // Later tokens of that attempt append to it.
    expect(r.token('.')).toBe('.');
    expect(r.final('Paris is in France.')).toBe('');
  });

  it('shows a retry that diverges on its first token right away', () => {
    expect(reconcile(['Wrong answer', { retry: true }, 'Right', ' answer'])).toBe(
      `Wrong answer${REGENERATED}Right answer`,
    );
  });

  it('streams the first attempt plainly when the retry came before any token', () => {
    expect(reconcile([{ retry: true }, 'Hello', { final: 'Hello' }])).toBe('Hello');
  });

  it('compares a second retry with the latest attempt, not the first one', () => {
    // After the separator, the shown answer is the second attempt's: a third attempt that
    // repeats it continues it without another separator.
    expect(
      reconcile([
        'one',
        { retry: true },
        'two',
        { retry: true },
        'two',
        ' more',
        { final: 'two more' },
      ]),
    ).toBe(`one${REGENERATED}two more`);
  });

  it('regenerates a final answer shorter than what was shown', () => {
    // An appending client cannot cut its text: the shorter answer is shown again, whole.
    expect(reconcile(['Hello world', { final: 'Hello' }])).toBe(`Hello world${REGENERATED}Hello`);
  });

  it('regenerates a final answer shorter than the held text of a retry', () => {
    expect(reconcile(['Hello world', { retry: true }, 'Hello', { final: 'Hello' }])).toBe(
      `Hello world${REGENERATED}Hello`,
    );
  });

  it('regenerates a final answer that differs from its own tokens', () => {
    expect(reconcile(['Hello world', { final: 'Goodbye world' }])).toBe(
      `Hello world${REGENERATED}Goodbye world`,
    );
  });

  it('finishes a held retry with the final answer when it goes on past the shown text', () => {
    expect(reconcile(['Hello', { retry: true }, 'Hel', { final: 'Hello world' }])).toBe(
      'Hello world',
    );
  });

  it('shows a final answer after a retry without tokens', () => {
    // The discarded text is still on screen; the final answer differs from it.
    expect(reconcile(['Hello', { retry: true }, { final: 'Bye' }])).toBe(`Hello${REGENERATED}Bye`);
  });
});

describe('createChatStream', () => {
  const full = () =>
    log()
      .status('queued')
      .status('active')
      .stage('retrieval', 'started')
      .stage('retrieval', 'completed')
      .sources([source(1)])
      .stage('generation', 'started')
      .token('Hello ')
      .token('world [1]')
      .stage('generation', 'completed')
      .completed('Hello world [1]', [source(1)]);

  it('produces nothing for status and stage events', () => {
    const translate = createChatStream(identity, { includeUsage: true });
    const { events } = log()
      .status('queued')
      .status('active')
      .stage('retrieval', 'started')
      .stage('retrieval', 'completed')
      .sources([source(1)]);
    expect(events.map(translate)).toEqual(['', '', '', '', '']);
  });

  it('streams chunks in OpenAI’s shape, the role on the first content chunk only', () => {
    const parsed = frames(stream(full().events));
    const chunks = parsed.slice(0, -1) as Chunk[];
    expect(chunks[0]).toMatchObject({
      id: 'chatcmpl-q-1',
      object: 'chat.completion.chunk',
      created: identity.created,
      model: 'askq',
      choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello ' }, finish_reason: null }],
    });
    expect(chunks[1]!.choices[0]!.delta).toEqual({ content: 'world [1]' });
    // Only the first chunk says who speaks.
    expect(chunks.filter((c) => c.choices[0]?.delta.role !== undefined)).toHaveLength(1);
    expect(shownText(parsed)).toBe('Hello world [1]');
  });

  it('puts the role on the final answer’s chunk when no token came before it', () => {
    // An exact-cache answer: sources, then completed, with no token events.
    const parsed = frames(
      stream(
        log()
          .sources([source(1)])
          .completed('Cached.').events,
      ),
    );
    const first = parsed[0] as Chunk;
    expect(first.choices[0]!.delta).toEqual({ role: 'assistant', content: 'Cached.' });
  });

  it('ends with a finish chunk carrying the sources, then [DONE]', () => {
    const parsed = frames(stream(full().events));
    expect(parsed.at(-1)).toBe('[DONE]');
    const last = parsed.at(-2) as Chunk;
    expect(last.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
    expect(last.sources).toEqual([source(1)]);
    expect(last.usage).toBeUndefined();
  });

  it('adds a usage chunk with no choices before [DONE] only when asked', () => {
    const withUsage = frames(stream(full().events, true));
    expect(withUsage.at(-1)).toBe('[DONE]');
    const usage = withUsage.at(-2) as Chunk;
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
    expect((withUsage.at(-3) as Chunk).choices[0]!.finish_reason).toBe('stop');

    const without = frames(stream(full().events, false));
    expect(without.filter((f) => f !== '[DONE]' && (f as Chunk).usage !== undefined)).toEqual([]);
  });

  it('writes the [DONE] line as the very last frame of the text', () => {
    expect(stream(full().events).endsWith('\n\ndata: [DONE]\n\n')).toBe(true);
  });

  it('sends only the regenerated answer after a diverging retry', () => {
    const parsed = frames(
      stream(
        log().token('Wrong').retry().token('Right', 2).token(' answer', 2).completed('Right answer')
          .events,
      ),
    );
    expect(shownText(parsed)).toBe(`Wrong${REGENERATED}Right answer`);
  });

  it('sends nothing again after a retry that repeats the answer', () => {
    const parsed = frames(
      stream(
        log().token('Same ').retry().token('Same ', 2).token('answer', 2).completed('Same answer')
          .events,
      ),
    );
    expect(shownText(parsed)).toBe('Same answer');
    // The held tokens make no frames at all (not even empty ones).
    const contentChunks = (parsed.slice(0, -1) as Chunk[]).filter(
      (c) => c.choices[0]?.delta.content !== undefined,
    );
    expect(contentChunks.map((c) => c.choices[0]!.delta.content)).toEqual(['Same ', 'answer']);
  });

  it('ends a failed question with a top-level error frame, then [DONE]', () => {
    // OpenAI's SDKs throw an APIError for a frame whose JSON has `error` at its top.
    const translate = createChatStream(identity, { includeUsage: true });
    const { events } = log().token('Hel').failed('LLM_TIMEOUT', 'the model did not answer');
    const raw = events.map(translate);
    const parsed = frames(raw.at(-1)!);
    expect(parsed).toEqual([
      {
        error: {
          message: 'the model did not answer',
          type: 'server_error',
          code: 'llm_timeout',
          param: null,
        },
      },
      '[DONE]',
    ]);
  });

  it('ends a cancelled question with a `cancelled` error frame, then [DONE]', () => {
    const parsed = frames(stream(log().status('active').token('Hel').cancelled().events));
    expect(parsed.at(-1)).toBe('[DONE]');
    expect(parsed.at(-2)).toEqual({
      error: {
        message: 'the question was cancelled',
        type: 'invalid_request_error',
        code: 'cancelled',
        param: null,
      },
    });
    // No finish chunk: the answer did not finish.
    expect(
      (parsed.slice(0, -2) as Chunk[]).some((c) => c.choices[0]?.finish_reason === 'stop'),
    ).toBe(false);
  });
});

describe('createChatStream, read by the OpenAI SDK', () => {
  // The SDK's own SSE parser, as `client.chat.completions.create({ stream: true })` reads.
  async function sdkChunks(raw: string): Promise<ChatCompletionChunk[]> {
    const chunks: ChatCompletionChunk[] = [];
    const sse = Stream.fromSSEResponse<ChatCompletionChunk>(
      new Response(raw),
      new AbortController(),
    );
    for await (const chunk of sse) chunks.push(chunk);
    return chunks;
  }

  // The SDK's accumulator (`client.chat.completions.stream`), fed the chunks the parser gave.
  async function sdkCompletion(chunks: ChatCompletionChunk[]) {
    const ndjson = chunks.map((c) => `${JSON.stringify(c)}\n`).join('');
    const body = new Response(ndjson).body!;
    return ChatCompletionStream.fromReadableStream(body).finalChatCompletion();
  }

  it('parses to chunks up to [DONE] and accumulates to the answer, role and usage', async () => {
    const raw = stream(
      log()
        .sources([source(1)])
        .token('Hello ')
        .token('world')
        .completed('Hello world').events,
      true,
    );
    const chunks = await sdkChunks(raw);
    expect(chunks.length).toBeGreaterThan(0);
    const completion = await sdkCompletion(chunks);
    expect(completion.choices[0]!.message).toMatchObject({
      role: 'assistant',
      content: 'Hello world',
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.usage).toEqual({
      prompt_tokens: 12,
      completion_tokens: 5,
      total_tokens: 17,
    });
  });

  it('throws an APIError for a failed question', async () => {
    const raw = stream(log().token('Hel').failed('LLM_TIMEOUT', 'the model did not answer').events);
    const error = await sdkChunks(raw).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ code: 'llm_timeout', type: 'server_error' });
  });

  it('throws an APIError with code cancelled for a cancelled question', async () => {
    const raw = stream(log().token('Hel').cancelled().events);
    const error = await sdkChunks(raw).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ code: 'cancelled' });
  });

  it('accumulates an empty answer with no tokens (the role must still be sent)', async () => {
    // The worker completes an empty answer when validation is not strict (non_empty fails but
    // the answer stands). No content delta carries the role then: without a chunk of its own
    // the SDK's finalChatCompletion() throws "missing role for choice 0". OpenAI's own streams
    // send `{ role: 'assistant', content: '' }` first, which the SDK folds into content null.
    const raw = stream(log().sources([]).completed('').events);
    const completion = await sdkCompletion(await sdkChunks(raw));
    expect(completion.choices[0]!.message.role).toBe('assistant');
    expect(completion.choices[0]!.message.content ?? '').toBe('');
  });
});
