import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { startApi, type RunningApi } from '../../apps/api/src/server.js';
import { ApiConfig } from '../../apps/api/src/config.js';
import { createLogger, loadConfig } from '@askq/shared';
import { pino } from 'pino';
import { inject } from 'vitest';
import { startAskq, waitForIngestion, type SeedDocument, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { FERRIES, FOLLOW_UP } from '../fixtures/ferries.js';

// askq through the official `openai` SDK (its real code against askq's HTTP API): chat
// completions, the Responses API in background mode with resumable streams, and follow-ups.

const KEY = 'sk-askq-test-key-acme';
const OTHER_KEY = 'sk-askq-test-key-globex';
const auth = { authorization: `Bearer ${KEY}` };

type Sourced = { sources: Array<{ documentId: string }> };

async function seed(url: string, documents: SeedDocument[], collection: string) {
  const res = await fetch(`${url}/v1/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ collection, documents }),
  });
  expect(res.status).toBe(202);
  const { ingestionId } = (await res.json()) as { ingestionId: string };
  await waitForIngestion(url, ingestionId, auth);
}

async function question(url: string, id: string): Promise<QuestionView> {
  const res = await fetch(`${url}/v1/questions/${id}`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as QuestionView;
}

/** Another API process on the same Redis and prefix, its log lines captured. */
async function startOtherApi(prefix: string) {
  const lines: Array<Record<string, unknown>> = [];
  const api = await startApi(
    loadConfig(ApiConfig, {
      REDIS_URL: inject('redisUrl'),
      CHROMA_URL: inject('chromaUrl'),
      REDIS_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      API_KEYS: `acme:${KEY},globex:${OTHER_KEY}`,
      SHUTDOWN_TIMEOUT_MS: '5000',
    }),
    createLogger({
      level: 'info',
      service: 'test',
      destination: {
        write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>),
      },
    }),
  );
  return { api, lines, url: `http://127.0.0.1:${api.port}` };
}

/** The id of the first question queued with this text, from an API's log lines. */
const queuedId = (lines: Array<Record<string, unknown>>) =>
  vi.waitFor(
    () => {
      const queued = lines.find((l) => l.msg === 'question queued');
      if (!queued) throw new Error('not queued yet');
      return queued.questionId as string;
    },
    { timeout: 10_000, interval: 10 },
  );

describe('offline, with two API processes', () => {
  let askq: TestAskq;
  let other: RunningApi;
  let client: OpenAI;
  let otherClient: OpenAI;

  beforeAll(async () => {
    askq = await startAskq({
      // Paced, so that a stream can be cut mid-answer.
      env: {
        API_KEYS: `acme:${KEY},globex:${OTHER_KEY}`,
        EXTRACTIVE_TOKEN_DELAY_MS: '25',
        TOKEN_BATCH_MS: '5',
      },
    });
    // Another API process on the same Redis and prefix, as behind a load balancer.
    other = await startApi(
      loadConfig(ApiConfig, {
        REDIS_URL: inject('redisUrl'),
        CHROMA_URL: inject('chromaUrl'),
        REDIS_PREFIX: askq.prefix,
        PORT: '0',
        HOST: '127.0.0.1',
        API_KEYS: `acme:${KEY},globex:${OTHER_KEY}`,
        SHUTDOWN_TIMEOUT_MS: '5000',
      }),
      pino({ level: 'silent' }),
    );
    client = new OpenAI({ baseURL: `${askq.url}/v1`, apiKey: KEY, maxRetries: 0 });
    otherClient = new OpenAI({
      baseURL: `http://127.0.0.1:${other.port}/v1`,
      apiKey: KEY,
      maxRetries: 0,
    });
    await seed(askq.url, FERRIES, 'ferries');
  });
  afterAll(async () => {
    await other?.stop('test finished');
    await askq?.stop();
  });

  it('lists one model per collection', async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models).toEqual(['askq', 'askq/ferries']);
    expect((await client.models.retrieve('askq/ferries')).id).toBe('askq/ferries');
  });

  it('answers the same follow-up in two ferry conversations from each one’s own ferry, not from the other’s cache', async () => {
    const ask = async (messages: OpenAI.ChatCompletionMessageParam[]) => {
      const { data, response } = await client.chat.completions
        .create({ model: 'askq/ferries', messages })
        .withResponse();
      const id = response.headers.get('x-askq-question-id')!;
      return { completion: data as typeof data & Sourced, id };
    };
    // Alone, the follow-up matches both ferries alike: one of them comes first, by a hair.
    const alone = await ask([{ role: 'user', content: FOLLOW_UP }]);
    const aloneTop = alone.completion.sources[0]!.documentId;

    const tops: string[] = [];
    for (const [ferry, about] of [
      ['mull-ferry', 'Tell me about the ferry to Mull.'],
      ['skye-ferry', 'Tell me about the ferry to Skye.'],
    ] as const) {
      const first = await ask([
        { role: 'system', content: 'You are a helpful travel assistant.' },
        { role: 'user', content: about },
      ]);
      expect(first.completion.sources[0]!.documentId).toBe(ferry);
      const followUp = await ask([
        { role: 'system', content: 'You are a helpful travel assistant.' },
        { role: 'user', content: about },
        { role: 'assistant', content: first.completion.choices[0]!.message.content! },
        { role: 'user', content: FOLLOW_UP },
      ]);
      expect(followUp.completion.sources[0]!.documentId).toBe(ferry);
      expect(followUp.completion.choices[0]!.message.content).toContain(
        ferry === 'mull-ferry' ? '46 minutes' : '30 minutes',
      );
      // The same words as the other conversation's follow-up, yet not its cached answer.
      expect((await question(askq.url, followUp.id)).result!.cached).toBe(false);
      tops.push(followUp.completion.sources[0]!.documentId);
    }
    // Without the conversation, one of the two would have had the other ferry first.
    expect(tops).toContain(aloneTop);
    expect(new Set(tops).size).toBe(2);
  });

  it('resumes a cut background stream through another API process, then polls it and continues it', async () => {
    const stream = await client.responses.create({
      model: 'askq/ferries',
      input: 'Tell me about the ferry to Mull, its harbour and its tickets.',
      background: true,
      stream: true,
    });
    const seen: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) {
      seen.push(event);
      // Cut mid-answer, as a dropped connection would.
      if (event.type === 'response.output_text.delta') break;
    }
    const created = seen[0] as OpenAI.Responses.ResponseCreatedEvent;
    expect(created.type).toBe('response.created');
    const id = created.response.id;
    const last = seen.at(-1)!.sequence_number;

    const resumed = await otherClient.responses.retrieve(id, {
      stream: true,
      starting_after: last,
    });
    const rest: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of resumed) rest.push(event);

    const all = [...seen, ...rest];
    // Nothing lost, nothing repeated: the sequence runs on without a gap.
    expect(all.map((e) => e.sequence_number)).toEqual(all.map((_, i) => i));
    const done = rest.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(done.type).toBe('response.completed');
    const deltas = all
      .filter(
        (e): e is OpenAI.Responses.ResponseTextDeltaEvent =>
          e.type === 'response.output_text.delta',
      )
      .map((e) => e.delta)
      .join('');
    expect(deltas).toBe(done.response.output_text);
    expect(deltas).toContain('Mull');
    const annotations = all.filter((e) => e.type === 'response.output_text.annotation.added');
    expect(annotations.length).toBeGreaterThan(0);
    expect(
      (annotations[0] as OpenAI.Responses.ResponseOutputTextAnnotationAddedEvent).annotation,
    ).toMatchObject({ type: 'file_citation', file_id: 'mull-ferry' });

    const polled = await otherClient.responses.retrieve(id);
    expect(polled.status).toBe('completed');
    expect(polled.output_text).toBe(deltas);

    // A follow-up through previous_response_id, answered about the same ferry.
    const followUp = await client.responses.create({
      model: 'askq/ferries',
      input: FOLLOW_UP,
      previous_response_id: id,
    });
    expect(followUp.status).toBe('completed');
    expect(followUp.previous_response_id).toBe(id);
    expect(followUp.output_text).toContain('46 minutes');
    expect((followUp as typeof followUp & Sourced).sources[0]!.documentId).toBe('mull-ferry');
  });

  it('cancels a background response mid-answer', async () => {
    const stream = await client.responses.create({
      model: 'askq/ferries',
      input: 'Tell me about the ferry to Skye, its pier and its tickets.',
      background: true,
      stream: true,
    });
    let id = '';
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'response.created') id = event.response.id;
      if (
        event.type === 'response.output_text.delta' &&
        events.filter((e) => e.type === event.type).length === 1
      ) {
        const cancelled = await client.responses.cancel(id);
        // It answers once the running question has ended `cancelled`.
        expect(cancelled.status).toBe('cancelled');
      }
    }
    const end = events.at(-1) as OpenAI.Responses.ResponseIncompleteEvent;
    expect(end.type).toBe('response.incomplete');
    expect(end.response.status).toBe('cancelled');
    expect((await client.responses.retrieve(id)).status).toBe('cancelled');
    expect((await question(askq.url, id.replace(/^resp_/, ''))).status).toBe('cancelled');
  });

  it('keeps tenants apart, and takes an Idempotency-Key as the native route does', async () => {
    const created = await client.responses.create({
      model: 'askq/ferries',
      input: 'Which ferry sails from Oban?',
      background: true,
    });
    const globex = new OpenAI({ baseURL: `${askq.url}/v1`, apiKey: OTHER_KEY, maxRetries: 0 });
    // Another tenant sees neither the response nor the collection.
    await expect(globex.responses.retrieve(created.id)).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    await expect(
      globex.responses.create({
        model: 'askq',
        input: 'And then?',
        previous_response_id: created.id,
      }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const listed = [];
    for await (const model of globex.models.list()) listed.push(model.id);
    expect(listed).toEqual(['askq']);

    const body = {
      model: 'askq/ferries',
      messages: [{ role: 'user' as const, content: 'Where are Skye ferry tickets sold?' }],
    };
    const once = await client.chat.completions
      .create(body, { headers: { 'Idempotency-Key': 'chat-1' } })
      .withResponse();
    const again = await client.chat.completions
      .create(body, { headers: { 'Idempotency-Key': 'chat-1' } })
      .withResponse();
    expect(again.response.headers.get('x-askq-question-id')).toBe(
      once.response.headers.get('x-askq-question-id'),
    );
    expect(again.data.choices[0]!.message.content).toBe(once.data.choices[0]!.message.content);
    const other = client.chat.completions.create(
      { ...body, messages: [{ role: 'user', content: 'Something else?' }] },
      { headers: { 'Idempotency-Key': 'chat-1' } },
    );
    await expect(other).rejects.toBeInstanceOf(OpenAI.UnprocessableEntityError);
  });

  it('answers a waiting unstreamed completion 503 when its API process shuts down; the question goes on', async () => {
    const { api: leaving, lines } = await startOtherApi(askq.prefix);
    const leavingClient = new OpenAI({
      baseURL: `http://127.0.0.1:${leaving.port}/v1`,
      apiKey: KEY,
      maxRetries: 0,
    });
    const waiting = leavingClient.chat.completions.create({
      model: 'askq/ferries',
      messages: [
        { role: 'user', content: 'Describe the Skye ferry: its pier, its cars, its tickets.' },
      ],
    });
    waiting.catch(() => undefined);
    // Once the question is accepted the request waits for its end; then the process stops.
    const questionId = await queuedId(lines);
    await leaving.stop('test');
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    // Durable: it is answered all the same, and the client can ask another process for it.
    await vi.waitFor(
      async () => expect((await question(askq.url, questionId)).status).toBe('completed'),
      { timeout: 15_000, interval: 50 },
    );
  });

  it('tells the SDK not to ask again for an outcome that would not change: a cancel stays a cancel', async () => {
    const { api, lines, url } = await startOtherApi(askq.prefix);
    try {
      // The SDK's own default: it retries 409 and 5xx twice, unless told not to.
      const retrying = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 2 });
      const waiting = retrying.chat.completions.create({
        model: 'askq/ferries',
        messages: [{ role: 'user', content: 'Describe the Mull ferry: its harbour, its cars.' }],
      });
      waiting.catch(() => undefined);
      const id = await queuedId(lines);
      const cancel = await fetch(`${url}/v1/questions/${id}`, { method: 'DELETE', headers: auth });
      expect([200, 202]).toContain(cancel.status);
      await expect(waiting).rejects.toBeInstanceOf(OpenAI.ConflictError);
      await expect(waiting).rejects.toMatchObject({ code: 'cancelled' });
      // Asked once: a retry would have asked (and answered) the cancelled question again.
      expect(lines.filter((l) => l.msg === 'question queued')).toHaveLength(1);
    } finally {
      await api.stop('test');
    }
  });

  it('raises the SDK’s own errors for a wrong key, a bad body and an unknown model', async () => {
    const wrong = new OpenAI({ baseURL: `${askq.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello?' }];
    await expect(wrong.chat.completions.create({ model: 'askq', messages })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const bad = client.chat.completions.create({ model: 'askq', messages: [] });
    await expect(bad).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(bad).rejects.toMatchObject({ status: 400, param: 'messages' });
    const notUser = client.chat.completions.create({
      model: 'askq',
      messages: [{ role: 'assistant', content: 'Hi' }],
    });
    await expect(notUser).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const unknown = client.chat.completions.create({ model: 'gpt-4o', messages });
    await expect(unknown).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(unknown).rejects.toMatchObject({ code: 'model_not_found' });
    await expect(
      client.responses.create({ model: 'askq/no-such-collection', input: 'Hello?' }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.responses.retrieve('resp_nope')).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    // The error body is OpenAI's shape, not askq's native one.
    const raw = await fetch(`${askq.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({
      error: {
        message: expect.any(String) as string,
        type: 'authentication_error',
        code: 'invalid_api_key',
        param: null,
      },
    });
  });
});

describe('with an LLM', () => {
  let askq: TestAskq;
  let llm: FakeLlm;
  let client: OpenAI;

  beforeAll(async () => {
    llm = await createFakeLlm();
    askq = await startAskq({
      env: {
        API_KEYS: `acme:${KEY}`,
        LLM_BASE_URL: llm.baseURL,
        LLM_API_KEY: 'test',
        LLM_MODEL_FAST: 'fast-model',
        LLM_MODEL_SMART: 'smart-model',
        TOKEN_BATCH_MS: '5',
      },
    });
    client = new OpenAI({ baseURL: `${askq.url}/v1`, apiKey: KEY, maxRetries: 0 });
    await seed(askq.url, FERRIES, 'default');
  });
  afterAll(async () => {
    await askq?.stop();
    await llm?.close();
  });

  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: 'How long does the Mull ferry crossing take?' },
  ];

  it('completes a chat, streamed and not, with usage; the header leads to the same question', async () => {
    llm.reply(() => ({ text: 'The Mull ferry crossing takes 46 minutes [1].' }));
    const { data, response } = await client.chat.completions
      .create({ model: 'askq', messages })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]!.message.content).toBe('The Mull ferry crossing takes 46 minutes [1].');
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);
    expect(data.usage!.total_tokens).toBe(
      data.usage!.prompt_tokens + data.usage!.completion_tokens,
    );
    const view = await question(askq.url, response.headers.get('x-askq-question-id')!);
    expect(view.status).toBe('completed');
    expect(view.result!.answer).toBe(data.choices[0]!.message.content);

    const { data: stream, response: streamed } = await client.chat.completions
      .create({
        model: 'askq:smart',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    const streamedView = await question(askq.url, streamed.headers.get('x-askq-question-id')!);
    expect(text).toBe(streamedView.result!.answer);
    expect(streamedView.result!.route).toBe('smart');
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]!.finish_reason).toBe('stop');
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.completion_tokens).toBe(streamedView.result!.usage.completionTokens);
  });

  it('shows a regenerated answer in a form each client handles: after a rule in chat, as a new item in a response', async () => {
    // The fast model cites a source that does not exist, fails validation and is escalated.
    llm.reply((req) =>
      req.body.model === 'fast-model'
        ? { text: 'It is about an hour [7].' }
        : { text: 'The Mull ferry crossing takes 46 minutes [1].' },
    );
    const stream = await client.chat.completions.create({
      model: 'askq:fast',
      messages,
      stream: true,
      cache: false,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(
      'It is about an hour [7].\n\n---\n\nThe Mull ferry crossing takes 46 minutes [1].',
    );

    const response = await client.responses
      .stream({ model: 'askq:fast', input: 'How long is the Mull ferry crossing, exactly?' })
      .finalResponse();
    expect(response.output_text).toBe('The Mull ferry crossing takes 46 minutes [1].');
    expect(response.output.map((item) => item.type === 'message' && item.status)).toEqual([
      'incomplete',
      'completed',
    ]);
  });
});
