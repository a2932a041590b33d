import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CollectionView } from '@askq/shared';
import { startAskq, waitForIngestion, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// Two tenants cannot see each other's anything: questions, streams, documents, ingestions,
// collections. Another tenant's id is a 404, exactly like an id that does not exist.
const KEYS = {
  acme: 'acme-key-for-tenancy-0123456789',
  globex: 'globex-key-for-tenancy-0123456789',
};
let askq: TestAskq;
const as = (tenant: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[tenant]}` });
const get = (path: string, tenant: keyof typeof KEYS, init: RequestInit = {}) =>
  fetch(askq.url + path, {
    ...init,
    headers: { ...as(tenant), ...(init.headers as Record<string, string>) },
  });

beforeAll(async () => {
  askq = await startAskq({
    env: { API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`, EXTRACTIVE_TOKEN_DELAY_MS: '0' },
  });
});
afterAll(async () => {
  await askq?.stop();
});

async function ingest(tenant: keyof typeof KEYS, documents: unknown[], collection = 'default') {
  const res = await askq.post('/v1/documents', { collection, documents }, as(tenant));
  expect(res.status).toBe(202);
  const { ingestionId } = (await res.json()) as { ingestionId: string };
  const view = await waitForIngestion(askq.url, ingestionId, as(tenant));
  return { ingestionId, view };
}

it('keeps every resource of a tenant invisible to the other', async () => {
  const acmeDocs = await ingest(
    'acme',
    [{ id: 'secret-plan', text: 'The acme launch date is in March.' }],
    'plans',
  );
  expect(acmeDocs.view.status).toBe('completed');

  // Ingestions and documents.
  expect((await get(`/v1/ingestions/${acmeDocs.ingestionId}`, 'globex')).status).toBe(404);
  expect(
    (await get('/v1/documents/secret-plan?collection=plans', 'globex', { method: 'DELETE' }))
      .status,
  ).toBe(404);
  const globexCollections = (await (await get('/v1/collections', 'globex')).json()) as {
    collections: CollectionView[];
  };
  expect(globexCollections.collections).toEqual([]);
  const acmeCollections = (await (await get('/v1/collections', 'acme')).json()) as {
    collections: CollectionView[];
  };
  expect(acmeCollections.collections.map((c) => c.name)).toEqual(['plans']);

  // Questions and their streams.
  const asked = await askq.post(
    '/v1/questions',
    { question: 'When is the launch?', collection: 'plans' },
    as('acme'),
  );
  const { id } = (await asked.json()) as { id: string };
  const events = await followEvents(`${askq.url}/v1/questions/${id}/events`, {
    headers: as('acme'),
  });
  expect(events.at(-1)!.event).toBe('completed');
  for (const [path, method] of [
    [`/v1/questions/${id}`, 'GET'],
    [`/v1/questions/${id}/events`, 'GET'],
    [`/v1/questions/${id}`, 'DELETE'],
  ] as const) {
    const res = await get(path, 'globex', { method });
    expect(res.status, `${method} ${path}`).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  }

  // The same collection name in another tenant is another collection: globex finds nothing.
  const theirs = await askq.post(
    '/v1/questions',
    { question: 'When is the launch?', collection: 'plans' },
    as('globex'),
  );
  const theirId = ((await theirs.json()) as { id: string }).id;
  const theirEvents = await followEvents(`${askq.url}/v1/questions/${theirId}/events`, {
    headers: as('globex'),
  });
  const result = (theirEvents.at(-1)!.data as { result: { sources: unknown[]; cached: boolean } })
    .result;
  expect(result.sources).toEqual([]);
  expect(result.cached).toBe(false);
});

it('refuses requests without a valid key with 401, and serves probes without one', async () => {
  expect((await fetch(`${askq.url}/v1/collections`)).status).toBe(401);
  expect(
    (
      await fetch(`${askq.url}/v1/collections`, {
        headers: { authorization: `Bearer ${KEYS.acme}x` },
      })
    ).status,
  ).toBe(401);
  expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
  expect((await fetch(`${askq.url}/metrics`)).status).toBe(200);
  // With tenants configured and no admin key, admin routes are closed.
  expect((await fetch(`${askq.url}/admin/queues`, { headers: as('acme') })).status).toBe(401);
});
