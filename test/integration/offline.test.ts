import { afterAll, beforeAll, expect, it } from 'vitest';
import type { QuestionResult } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// The offline `extractive` provider runs through the same generation path as a real model:
// streaming, batching, validation and cancellation hold without any LLM server.
let askq: TestAskq;

beforeAll(async () => {
  askq = await startAskq({ env: { EXTRACTIVE_TOKEN_DELAY_MS: '20', TOKEN_BATCH_MS: '5' } });
  await askq.seed([
    {
      id: 'bees',
      title: 'Bees',
      text: 'Honeybees tell each other where flowers are with the waggle dance. The angle of the dance gives the direction and its length gives the distance. A colony can hold fifty thousand bees.',
    },
  ]);
});
afterAll(async () => {
  await askq?.stop();
});

it('streams a cited, validated answer from the sources', async () => {
  const { events } = await askq.ask('How do bees tell each other where flowers are?');
  const received = await followEvents(events);
  const result = (received.at(-1)!.data as { result: QuestionResult }).result;
  expect(result).toMatchObject({ model: 'extractive', validation: { passed: true } });
  expect(result.answer).toMatch(/waggle dance.*\[1\]/);
  const tokens = received.filter((e) => e.event === 'token');
  expect(tokens.length).toBeGreaterThan(1); // paced, so it arrives in several batches
  expect(tokens.map((e) => (e.data as { text: string }).text).join('')).toBe(result.answer);
});

it('cancels mid-answer', async () => {
  const { id, events } = await askq.ask('How do bees tell each other where flowers are?', {
    cache: false,
  });
  const seen = await followEvents(events, {
    stopAfter: (got) => got.some((e) => e.event === 'token'),
  });
  expect((await fetch(`${askq.url}/v1/questions/${id}`, { method: 'DELETE' })).status).toBe(202);
  const rest = await followEvents(`${events}?lastEventId=${seen.at(-1)!.id}`);
  expect(rest.at(-1)!.event).toBe('cancelled');
  const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as { status: string };
  expect(view.status).toBe('cancelled');
});
