import { afterAll, beforeAll, expect, it } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

let askq: TestAskq;

beforeAll(async () => {
  askq = await startAskq();
});
afterAll(async () => {
  await askq?.stop();
});

// Reports (does not assert) how long a question waits between POST and a worker starting it.
// BullMQ workers block on Redis, so this should be a few milliseconds. See bench/ for the harness.
it('reports the pickup time from POST to the worker starting the question', async () => {
  const waits: number[] = [];
  for (let i = 0; i < 20; i++) {
    const { id, events } = await askq.ask(`Pickup probe ${i}?`, { collection: 'pickup' });
    await followEvents(events);
    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.status).toBe('completed');
    waits.push(view.result!.timings.queueMs);
  }
  waits.sort((a, b) => a - b);
  const pick = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))];
  console.log(
    `pickup (POST -> worker start), ms: p50=${pick(0.5)} p99=${pick(0.99)} max=${waits.at(-1)}`,
  );
});
