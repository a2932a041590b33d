import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeLlm, DEFAULT_FAKE_ANSWER } from './fake-llm.js';
import type { FakeLlm } from './fake-llm.js';

describe('fake LLM', () => {
  let fake: FakeLlm;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await createFakeLlm();
    client = new OpenAI({ baseURL: fake.baseURL, apiKey: 'test', maxRetries: 0 });
  });

  afterEach(async () => {
    await fake.close();
  });

  it('streams the reply word by word and ends with a usage chunk', async () => {
    const text = 'Paris is  the capital\nof France. ';
    fake.reply(() => ({ text }));
    const stream = await client.chat.completions.create({
      model: 'fake-fast',
      messages: [{ role: 'user', content: 'What is the capital of France?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const parts: string[] = [];
    const finishReasons: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        parts.push(choice.delta.content ?? '');
        finishReasons.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(parts.join('')).toBe(text);
    expect(parts.length).toBeGreaterThan(3);
    expect(finishReasons.at(-1)).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 6, completion_tokens: 6, total_tokens: 12 }); // words, not tokens
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.path).toBe('/v1/chat/completions');
    expect(fake.requests[0]?.body).toMatchObject({ model: 'fake-fast', stream: true });
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer test');
  });

  it('answers a non-streaming request with the default text', async () => {
    const completion = await client.chat.completions.create({
      model: 'fake-smart',
      messages: [{ role: 'user', content: 'Where is the answer?' }],
    });
    expect(completion.choices[0]?.message.content).toBe(DEFAULT_FAKE_ANSWER);
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.model).toBe('fake-smart');
  });

  it('surfaces an error status as OpenAI.APIError with that status', async () => {
    fake.reply(() => ({ status: 429, error: 'slow down', headers: { 'retry-after': '2' } }));
    const call = client.chat.completions.create({
      model: 'fake-fast',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const error = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('slow down');
    expect((error as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('2');
  });

  it('notices when the client aborts mid-stream', async () => {
    fake.reply(() => ({ text: 'one two three four five six seven eight', chunkDelayMs: 20 }));
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'fake-fast', messages: [{ role: 'user', content: 'count' }], stream: true },
      { signal: controller.signal },
    );
    const parts: string[] = [];
    // Per the openai SDK, an abort ends the loop silently rather than throwing.
    for await (const chunk of stream) {
      parts.push(chunk.choices[0]?.delta.content ?? '');
      controller.abort();
    }
    expect(controller.signal.aborted).toBe(true);
    await fake.disconnected(0);
    expect(parts).toEqual(['one']);
  });

  it('returns deterministic unit vectors for embeddings', async () => {
    const first = await client.embeddings.create({ model: 'fake-embed', input: ['alpha', 'beta'] });
    const again = await client.embeddings.create({
      model: 'fake-embed',
      input: 'alpha',
      encoding_format: 'float',
    });
    const [alpha, beta] = first.data.map((d) => d.embedding);
    expect(alpha).toHaveLength(8);
    expect(alpha).toEqual(again.data[0]?.embedding);
    expect(beta).not.toEqual(alpha);
    expect(Math.hypot(...(alpha ?? []))).toBeCloseTo(1, 5);
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/embeddings', '/v1/embeddings']);
  });

  it('answers unknown paths with 404', async () => {
    const response = await fetch(`${fake.baseURL}/models`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 'not_found' } });
    expect(fake.requests).toHaveLength(0);
  });
});
