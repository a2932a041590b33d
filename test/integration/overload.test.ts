import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

// A burst well past what the workers can answer within JOB_TIMEOUT_MS: askq refuses the excess at
// the door (503 OVERLOADED, Retry-After) instead of accepting questions that would wait in the
// queue until they fail with JOB_TIMEOUT. Two slots, answers of about a tenth of a second and a
// six-second limit: the estimate lets in some twenty-five (each to finish within 30% of the
// limit, the rest a margin for the estimate's error), and every one of them completes.
let askq: TestAskq;
let llm: FakeLlm;

beforeAll(async () => {
  llm = await createFakeLlm();
  llm.reply(() => ({ text: 'The moon pulls the oceans [1].', firstChunkDelayMs: 100 }));
  askq = await startAskq({
    env: {
      LLM_BASE_URL: llm.baseURL,
      WORKER_CONCURRENCY: '2',
      JOB_TIMEOUT_MS: '6000',
      CAPACITY_HEARTBEAT_MS: '200',
      // A wider margin than the default half: a test machine's speed varies more within a run
      // than a deployment's, and an accepted question that times out would fail the test.
      LOAD_SHED_SHARE: '0.3',
      RATE_LIMIT_PER_MINUTE: '100000',
      TENANT_MAX_INFLIGHT: '100000',
    },
  });
  await askq.seed([{ id: 'tides', text: 'The moon pulls the oceans and makes the tides.' }]);
});

afterAll(async () => {
  await askq?.stop();
  await llm?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${askq.url}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

it('refuses a burst past capacity at the door, and every question it accepted completes', async () => {
  // A few answers first, so the workers' heartbeats carry how long one takes.
  for (let i = 0; i < 4; i++) {
    const { events } = await askq.ask(`What pulls the oceans? (warm-up ${i})`, { cache: false });
    expect((await followEvents(events)).at(-1)!.event).toBe('completed');
  }
  await vi.waitFor(
    async () => expect(await metric('askq_question_service_seconds')).toBeGreaterThan(0),
    {
      timeout: 10_000,
      interval: 50,
    },
  );
  expect(await metric('askq_worker_slots')).toBe(2);

  const responses = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      askq.post('/v1/questions', { question: `What pulls the oceans? (burst ${i})`, cache: false }),
    ),
  );
  const accepted: string[] = [];
  let refused = 0;
  for (const res of responses) {
    if (res.status === 202) {
      accepted.push(((await res.json()) as { links: { events: string } }).links.events);
      continue;
    }
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({ error: { code: 'OVERLOADED' } });
    refused++;
  }
  expect(refused).toBeGreaterThan(0);
  expect(accepted.length).toBeGreaterThan(10);
  expect(await metric('askq_questions_shed_total')).toBe(refused);

  // Nothing accepted is lost, and nothing accepted times out.
  const ends = await Promise.all(
    accepted.map(async (path) => (await followEvents(askq.url + path)).at(-1)!),
  );
  const outcomes = ends.map((e) =>
    e.event === 'failed' ? (e.data as { error: { code: string } }).error.code : e.event,
  );
  expect(outcomes.filter((o) => o !== 'completed')).toEqual([]);
}, 60_000);
