import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAskq, type TestAskq } from '../support/askq.js';

const ADMIN_KEY = 'admin-key-for-the-tests-0123456789';

async function boardQueues(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/admin/queues/api/queues`, { headers });
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    queues: Array<{
      name: string;
      displayName?: string;
      readOnlyMode: boolean;
      counts: { waiting: number };
    }>;
  };
  return body.queues;
}

describe('Bull Board without ADMIN_API_KEY', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({ worker: false });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('serves the dashboard and its assets under /admin/queues, read-only', async () => {
    const page = await fetch(`${askq.url}/admin/queues`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    // Assets are relative to the page's <base>: it must be the public path, or every asset 404s.
    const base = /<base href="([^"]+)"/.exec(html)?.[1];
    expect(base).toBe('/admin/queues/');
    const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(1);
    for (const asset of assets) {
      expect((await fetch(new URL(asset, askq.url + base!))).status).toBe(200);
    }
    const queues = await boardQueues(askq.url);
    expect(queues.map((q) => q.name).sort()).toEqual(['ingest', 'questions']);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
  });
});

describe('Bull Board with ADMIN_API_KEY', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    askq = await startAskq({ worker: false, env: { ADMIN_API_KEY: ADMIN_KEY } });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('answers 401 with a basic-auth challenge (so browsers ask) without the key', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-key' },
      { authorization: `Basic ${btoa('ops:wrong')}` },
    ];
    for (const headers of attempts) {
      const res = await fetch(`${askq.url}/admin/queues`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="askq admin"/);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    }
  });

  it('lets the key in as Bearer or as a basic-auth password with any user, with write access', async () => {
    for (const authorization of [`Bearer ${ADMIN_KEY}`, `Basic ${btoa(`anyone:${ADMIN_KEY}`)}`]) {
      expect((await fetch(`${askq.url}/admin/queues`, { headers: { authorization } })).status).toBe(
        200,
      );
      const queues = await boardQueues(askq.url, { authorization });
      expect(queues.every((q) => !q.readOnlyMode)).toBe(true);
    }
  });

  it("answers a malformed body to Bull Board's API in askq's error shape", async () => {
    const res = await fetch(`${askq.url}/admin/queues/api/queues/questions/clean/completed`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_REQUEST');
  });

  it('leaves the public API alone', async () => {
    expect((await fetch(`${askq.url}/healthz`)).status).toBe(200);
  });
});

describe('sharded question queues', () => {
  let askq: TestAskq;
  beforeAll(async () => {
    // No worker: the questions stay waiting where the API put them.
    askq = await startAskq({ worker: false, env: { QUEUE_SHARDS: '3' } });
  });
  afterAll(async () => {
    await askq?.stop();
  });

  it('shows each shard in Bull Board and counts them together in askq_queue_jobs', async () => {
    for (let i = 0; i < 6; i++) await askq.ask(`Which shard is this one in? (${i})`);
    const queues = await boardQueues(askq.url);
    expect(queues.map((q) => q.name).sort()).toEqual([
      'ingest',
      's0.questions',
      's1.questions',
      's2.questions',
    ]);
    const shards = queues.filter((q) => q.name.endsWith('questions'));
    expect(shards.map((q) => q.displayName).sort()).toEqual([
      'questions, shard 1 of 3',
      'questions, shard 2 of 3',
      'questions, shard 3 of 3',
    ]);
    expect(shards.reduce((sum, q) => sum + q.counts.waiting, 0)).toBe(6);
    const metrics = await (await fetch(`${askq.url}/metrics`)).text();
    expect(metrics).toMatch(/^askq_queue_jobs\{queue="questions",state="waiting",[^}]*\} 6$/m);
  });
});
