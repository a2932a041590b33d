import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createKeys, LOG_PAGE_SIZE } from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

// A finished question's log is replayed in pages (XRANGE … COUNT), not read whole, and nothing is
// subscribed to for a question the caller may not see. Watched from Redis itself, with MONITOR.
let llm: FakeLlm;
let askq: TestAskq;
let monitor: Awaited<ReturnType<Redis['monitor']>>;
let admin: Redis;
const commands: string[][] = [];

beforeAll(async () => {
  llm = await createFakeLlm();
  // One event per token: a long answer makes a log of several pages.
  llm.reply(() => ({ text: Array.from({ length: 450 }, (_, i) => `word${i}`).join(' ') }));
  askq = await startAskq({
    env: {
      LLM_BASE_URL: llm.baseURL,
      TOKEN_BATCH_MAX: '1',
      API_KEYS: 'one:key-of-tenant-one-000,two:key-of-tenant-two-000',
    },
  });
  const seeded = await askq.post(
    '/v1/documents',
    { documents: [{ id: 'log', text: 'The log holds every event of a question, in order.' }] },
    as('one'),
  );
  const { ingestionId } = (await seeded.json()) as { ingestionId: string };
  expect((await waitForIngestion(askq.url, ingestionId, as('one'))).status).toBe('completed');
  admin = new Redis(inject('redisUrl'));
  monitor = await admin.monitor();
  monitor.on('monitor', (_time: string, args: string[]) => commands.push(args));
});
afterAll(async () => {
  monitor?.disconnect();
  admin?.disconnect();
  await askq?.stop();
  await llm?.close();
});

const as = (tenant: 'one' | 'two') => ({ authorization: `Bearer key-of-tenant-${tenant}-000` });

it('replays a finished question page by page, every event once', async () => {
  const asked = await askq.post(
    '/v1/questions',
    { question: 'What is in the log?', cache: false },
    as('one'),
  );
  const { id, links } = (await asked.json()) as { id: string; links: { events: string } };
  const live = await followEvents(`${askq.url}${links.events}`, { headers: as('one') });
  expect(live.at(-1)?.event).toBe('completed');
  expect(live.length).toBeGreaterThan(2 * LOG_PAGE_SIZE);

  const eventsKey = createKeys(askq.prefix).events(id);
  const from = commands.length;
  const replayed = await followEvents(`${askq.url}${links.events}`, { headers: as('one') });
  expect(replayed.map((e) => e.id)).toEqual(live.map((e) => e.id));
  const reads = commands
    .slice(from)
    .filter((c) => c[0]?.toLowerCase() === 'xrange' && c[1] === eventsKey);
  expect(reads.length).toBe(Math.ceil(live.length / LOG_PAGE_SIZE));
  for (const read of reads) expect(read.slice(-2)).toEqual(['COUNT', String(LOG_PAGE_SIZE)]);
});

it('subscribes to nothing, and reads nothing, for a question of another tenant', async () => {
  const asked = await askq.post(
    '/v1/questions',
    { question: 'Whose is this?', cache: false },
    as('one'),
  );
  const { id, links } = (await asked.json()) as { id: string; links: { events: string } };
  // Finished first: the worker's own writes to its log are not the API's.
  await followEvents(`${askq.url}${links.events}`, { headers: as('one') });
  const keys = createKeys(askq.prefix);
  const from = commands.length;
  const res = await fetch(`${askq.url}${links.events}`, { headers: as('two') });
  expect(res.status).toBe(404);
  // Letting go of the first question's subscription may land here; taking one may not.
  const touched = commands
    .slice(from)
    .filter((c) => !/unsubscribe$/i.test(c[0] ?? ''))
    .filter((c) => c.includes(keys.eventsChannel(id)) || c.includes(keys.events(id)));
  expect(touched).toEqual([]);
});
