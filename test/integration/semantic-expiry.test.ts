import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest';
import { chromaClientFor } from '../../apps/worker/src/knowledge/chroma-store.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// Semantic-cache entries do not outlive CACHE_TTL_SECONDS in Chroma: a later store deletes the
// expired ones (here with a TTL of one second, so the test waits a second, not fifteen minutes).
let askq: TestAskq;

beforeAll(async () => {
  askq = await startAskq({ env: { CACHE_TTL_SECONDS: '1' } });
  await askq.seed([
    { id: 'tides', text: 'Tides are caused by the pull of the Moon and the Sun on the oceans.' },
    { id: 'bees', text: 'A honeybee colony has one queen, who lays all of its eggs.' },
  ]);
});
afterAll(async () => {
  await askq?.stop();
});

const ask = async (question: string) =>
  followEvents((await askq.ask(question, { collection: 'default' })).events);

it('deletes expired entries from Chroma as new ones are stored', async () => {
  const name = `${askq.prefix}.qcache.default.default`;
  const chroma = chromaClientFor(inject('chromaUrl'));
  const stored = async () =>
    (await (await chroma.getCollection({ name })).get({ include: ['metadatas'] })).metadatas.map(
      (m) => m?.question,
    );

  await ask('What causes tides?');
  await vi.waitFor(async () => expect(await stored()).toEqual(['what causes tides']));
  // Once it has expired, storing another answer sweeps it out.
  let n = 0;
  await vi.waitFor(
    async () => {
      await ask(`Who lays the eggs of a honeybee colony, case ${n++}?`);
      expect(await stored()).not.toContain('what causes tides');
    },
    { timeout: 20_000, interval: 200 },
  );
});
