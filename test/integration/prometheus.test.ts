import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/free-port.js';
import { spawnManaged, waitFor, type ManagedProcess } from '../../scripts/lib/managed-process.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

// A real Prometheus scraping a running askq with the shipped alert rules: every PromQL
// expression of the Grafana dashboard and of the rules must parse and evaluate, and the core
// panels must return data.
const deploy = join(import.meta.dirname, '../../deploy');
let llm: FakeLlm;
let askq: TestAskq;
let prometheus: ManagedProcess;
let promUrl: string;
let dir: string;

interface QueryResult {
  status: string;
  error?: string;
  data?: { result: unknown[] };
}

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResult;
}

async function askSome(n: number) {
  for (let i = 0; i < n; i++)
    await followEvents((await askq.ask(`What causes tides? (${i})`)).events);
}

beforeAll(async () => {
  llm = await createFakeLlm();
  llm.reply(() => ({ text: 'Tides are caused by the pull of the Moon [1].' }));
  askq = await startAskq({ env: { LLM_BASE_URL: llm.baseURL } });
  await askq.seed([{ id: 'tides', text: 'Tides are caused by the pull of the Moon and the Sun.' }]);
  await askSome(2);
  // A client error, so the HTTP error panel has a series from the first scrape on.
  expect((await askq.post('/v1/questions', { question: '' })).status).toBe(400);

  dir = await mkdtemp(join(tmpdir(), 'askq-prometheus-'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  // The shipped config finds targets through Docker's DNS; here they are this process's ports.
  await writeFile(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${join(deploy, 'prometheus/alerts.yml')}']`,
      'scrape_configs:',
      `  - { job_name: askq-api, static_configs: [{ targets: ['127.0.0.1:${new URL(askq.url).port}'] }] }`,
      `  - { job_name: askq-worker, static_configs: [{ targets: ['127.0.0.1:${askq.worker!.metricsPort}'] }] }`,
      '',
    ].join('\n'),
  );
  prometheus = spawnManaged(
    'prometheus',
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { logFile: join(dir, 'prometheus.log') },
  );
  await waitFor(async () => (await fetch(`${promUrl}/-/ready`)).ok, {
    timeoutMs: 60_000,
    what: 'prometheus',
    exited: prometheus.exited,
    logFile: join(dir, 'prometheus.log'),
  });
  // Wait for both targets up and for enough samples that rate() over 1m has two points.
  await waitFor(
    async () => {
      const up = await query('sum(up{job=~"askq-api|askq-worker"})');
      const samples = await query('count_over_time(askq_questions_total{service="worker"}[1m])');
      const count = (r: QueryResult) =>
        Number(
          ((r.data?.result[0] as { value?: [number, string] } | undefined)?.value ?? [0, '0'])[1],
        );
      return count(up) === 2 && count(samples) >= 3;
    },
    { timeoutMs: 60_000, what: 'scraped samples of askq' },
  );
  await askSome(3);
  // One more scrape after the new questions, so rates see them.
  await waitFor(
    async () => {
      const r = await query('sum(askq_questions_total{outcome="completed"})');
      return Number((r.data?.result[0] as { value: [number, string] } | undefined)?.value[1]) >= 5;
    },
    { timeoutMs: 30_000, what: 'the last questions scraped' },
  );
}, 180_000);

afterAll(async () => {
  await prometheus?.stop();
  await askq?.stop();
  await llm?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Panel {
  title?: string;
  type?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

async function dashboardExpressions(): Promise<Array<{ panel: string; expr: string }>> {
  const dashboard = JSON.parse(
    await readFile(join(deploy, 'grafana/dashboards/askq.json'), 'utf8'),
  ) as { panels: Panel[] };
  const flat = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return flat(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? [])
      .filter((t) => t.expr)
      .map((t) => ({
        panel: panel.title ?? '(untitled)',
        // Grafana's own variables, as Grafana would substitute them.
        expr: t
          .expr!.replaceAll('$__rate_interval', '1m')
          .replaceAll('$__interval', '15s')
          .replaceAll('$__range', '1h'),
      })),
  );
}

it('loads the alert rules, and evaluates each without error', async () => {
  const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
    data: {
      groups: Array<{
        rules: Array<{ name: string; query: string; health: string; lastError?: string }>;
      }>;
    };
  };
  const rules = res.data.groups.flatMap((g) => g.rules);
  expect(rules.map((r) => r.name)).toEqual(
    expect.arrayContaining(['AskqQueueGrowing', 'AskqFailureRateHigh', 'AskqWorkerDown']),
  );
  await waitFor(
    async () => {
      const again = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as typeof res;
      return again.data.groups.flatMap((g) => g.rules).every((r) => r.health === 'ok');
    },
    { timeoutMs: 10_000, what: 'every rule evaluated' },
  );
  for (const rule of rules) {
    const result = await query(rule.query);
    expect(result.error, rule.name).toBeUndefined();
    expect(result.status).toBe('success');
  }
  // Nothing is wrong with this askq, so nothing fires.
  const alerts = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as {
    data: { alerts: Array<{ labels: { alertname: string }; state: string }> };
  };
  expect(alerts.data.alerts.filter((a) => a.state === 'firing')).toEqual([]);
});

it('evaluates every dashboard expression, and the core panels have data', async () => {
  const expressions = await dashboardExpressions();
  expect(expressions.length).toBeGreaterThan(10);
  const empty: string[] = [];
  for (const { panel, expr } of expressions) {
    const result = await query(expr);
    expect(result.error, `${panel}: ${expr}`).toBeUndefined();
    expect(result.status).toBe('success');
    if ((result.data?.result.length ?? 0) === 0) empty.push(`${panel}: ${expr}`);
  }
  // Core: throughput, queue depth, stage latency, HTTP traffic, workers up. Cache panels wait for
  // the cache, token and first-token panels for a model; those may be empty on an idle system.
  const core =
    /askq_questions_total|askq_queue_jobs|askq_stage_duration_seconds|askq_http_request_duration_seconds|\bup\b/;
  expect(empty.filter((e) => core.test(e))).toEqual([]);
});
