import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

// Both /metrics after real questions: SPEC 4's names and labels, linted by the real promtool.
let llm: FakeLlm;
let askq: TestAskq;
let apiText: string;
let workerText: string;

beforeAll(async () => {
  llm = await createFakeLlm();
  askq = await startAskq({ env: { LLM_BASE_URL: llm.baseURL, RETRY_BASE_DELAY_MS: '10' } });
  await askq.seed([{ id: 'tides', text: 'Tides are caused by the pull of the Moon and the Sun.' }]);
  llm.reply(() => ({ text: 'Tides are caused by the pull of the Moon [1].' }));
  await followEvents((await askq.ask('What causes tides?')).events);
  await followEvents((await askq.ask('Compare the Moon versus the Sun on tides.')).events);
  llm.reply(() => ({ status: 400, error: 'no' }));
  await followEvents((await askq.ask('What pulls the tides?')).events);
  await askq.post('/v1/questions', { question: '' }); // a 400 for the HTTP histogram
  apiText = await (await fetch(`${askq.url}/metrics`)).text();
  workerText = await (await fetch(`http://127.0.0.1:${askq.worker!.metricsPort}/metrics`)).text();
});
afterAll(async () => {
  await askq?.stop();
  await llm?.close();
});

async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  child.stdin.end(text);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** The value of the sample of `name` whose labels include `labels` (label order varies). */
function value(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/i.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/\b(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

// prom-client's own default gauges (nodejs_active_*_total) carry a _total suffix that promtool's
// linter flags; nothing else may be reported.
const KNOWN_FINDING =
  /^nodejs_active_(?:handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

describe('metrics', () => {
  it('pass promtool check metrics on both processes', async () => {
    for (const text of [apiText, workerText]) {
      const { code, output } = await promtoolCheck(text);
      const findings = output.split('\n').filter((l) => l.trim() !== '');
      expect(findings.filter((l) => !KNOWN_FINDING.test(l))).toEqual([]);
      // promtool exits 3 for lint findings only; 1 would mean the exposition did not parse.
      expect(findings.length === 0 ? code === 0 : code === 3).toBe(true);
    }
  });

  it('define every SPEC 4 metric on both processes, with its type', () => {
    const types = {
      askq_queue_wait_seconds: 'histogram',
      askq_stage_duration_seconds: 'histogram',
      askq_question_duration_seconds: 'histogram',
      askq_questions_total: 'counter',
      askq_llm_time_to_first_token_seconds: 'histogram',
      askq_llm_tokens_total: 'counter',
      askq_cache_lookups_total: 'counter',
      askq_queue_jobs: 'gauge',
      askq_sse_connections: 'gauge',
      askq_sse_events_sent_total: 'counter',
      askq_http_request_duration_seconds: 'histogram',
    };
    for (const text of [apiText, workerText]) {
      for (const [name, type] of Object.entries(types)) {
        if (name === 'askq_queue_jobs' && text === workerText) continue; // the API counts queues
        expect(text).toContain(`# TYPE ${name} ${type}`);
      }
    }
  });

  it('label default metrics with the service', () => {
    expect(apiText).toMatch(/^process_cpu_seconds_total\{service="api"\} /m);
    expect(workerText).toMatch(/^process_cpu_seconds_total\{service="worker"\} /m);
  });

  it('count questions, stages, tokens and time to first token in the worker', () => {
    expect(
      value(workerText, 'askq_questions_total', { outcome: 'completed', cached: 'false' }),
    ).toBe(2);
    expect(value(workerText, 'askq_questions_total', { outcome: 'failed', cached: 'false' })).toBe(
      1,
    );
    expect(
      value(workerText, 'askq_question_duration_seconds_count', { outcome: 'completed' }),
    ).toBe(2);
    expect(value(workerText, 'askq_queue_wait_seconds_count')).toBe(3);
    expect(
      value(workerText, 'askq_stage_duration_seconds_count', { stage: 'retrieval', outcome: 'ok' }),
    ).toBe(3);
    expect(
      value(workerText, 'askq_stage_duration_seconds_count', {
        stage: 'generation',
        outcome: 'error',
      }),
    ).toBe(1);
    // Routing: the simple question went to the fast model, the comparison to the smart one.
    expect(
      value(workerText, 'askq_llm_time_to_first_token_seconds_count', { model: 'gpt-4o-mini' }),
    ).toBe(1);
    expect(
      value(workerText, 'askq_llm_time_to_first_token_seconds_count', { model: 'gpt-4o' }),
    ).toBe(1);
    expect(
      value(workerText, 'askq_llm_tokens_total', { model: 'gpt-4o-mini', kind: 'completion' }),
    ).toBeGreaterThan(0);
    // Buckets reach minutes for LLM-bound histograms.
    expect(
      value(workerText, 'askq_stage_duration_seconds_bucket', {
        le: '240',
        stage: 'retrieval',
        outcome: 'ok',
      }),
    ).toBe(3);
  });

  it('time HTTP requests by route pattern, count SSE events, and read queue counts at scrape', () => {
    expect(
      value(apiText, 'askq_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/questions',
        status: '202',
      }),
    ).toBe(3);
    expect(
      value(apiText, 'askq_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/v1/questions',
        status: '400',
      }),
    ).toBe(1);
    expect(apiText).toContain('route="/v1/questions/:id/events"');
    expect(apiText).not.toMatch(/route="\/v1\/questions\/[0-9a-f]{8}-/);
    expect(value(apiText, 'askq_sse_events_sent_total')).toBeGreaterThan(10);
    expect(value(apiText, 'askq_sse_connections')).toBe(0);
    expect(value(apiText, 'askq_queue_jobs', { queue: 'questions', state: 'waiting' })).toBe(0);
    expect(
      value(apiText, 'askq_queue_jobs', { queue: 'ingest', state: 'completed' }),
    ).toBeGreaterThanOrEqual(1);
  });
});
