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

// How long a question waits between POST and a worker starting it. BullMQ workers block on Redis
// (no polling), so this is a few milliseconds; bench/pickup.ts measures it against the raw parts.
// Timings are not asserted here: what is asserted is that the figure is recorded for every
// question, and is what it says, the time from its creation to its start.
it('records each question’s pickup, from its creation to a worker starting it', async () => {
  const waits: number[] = [];
  for (let i = 0; i < 20; i++) {
    const { id, events } = await askq.ask(`Pickup probe ${i}?`, { collection: 'pickup' });
    await followEvents(events);
    const view = (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
    expect(view.status).toBe('completed');
    const { queueMs, totalMs } = view.result!.timings;
    expect(Number.isInteger(queueMs) && queueMs >= 0).toBe(true);
    expect(queueMs).toBeLessThanOrEqual(totalMs);
    // Creation and start are whole milliseconds in the view; the timing is their difference.
    const between = Date.parse(view.startedAt!) - Date.parse(view.createdAt);
    expect(Math.abs(queueMs - between)).toBeLessThanOrEqual(1);
    waits.push(queueMs);
  }
  waits.sort((a, b) => a - b);
  const pick = (q: number) => waits[Math.min(waits.length - 1, Math.floor(q * waits.length))];
  console.log(
    `pickup (POST -> worker start), ms: p50=${pick(0.5)} p99=${pick(0.99)} max=${waits.at(-1)}`,
  );
});
