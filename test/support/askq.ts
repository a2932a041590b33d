import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { inject, vi } from 'vitest';
import { createLogger, loadConfig, type IngestionView } from '@askq/shared';
import { ApiConfig } from '../../apps/api/src/config.js';
import { startApi, type RunningApi } from '../../apps/api/src/server.js';
import { WorkerConfig } from '../../apps/worker/src/config.js';
import { startWorker, type RunningWorker } from '../../apps/worker/src/runtime.js';

/** An API and (optionally) a worker started in this process against the shared test services. */
export interface TestAskq {
  readonly url: string;
  readonly prefix: string;
  readonly api: RunningApi;
  readonly worker: RunningWorker | undefined;
  /** The API's and worker's log lines, when started with `captureLogs`. */
  readonly logs: Array<Record<string, unknown>>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  ask(
    question: string,
    extra?: Record<string, unknown>,
  ): Promise<{ id: string; events: string; status: number; cached: boolean }>;
  /** Ingests through the API and waits for the ingestion to finish. */
  seed(documents: SeedDocument[], collection?: string): Promise<IngestionView>;
  /**
   * Starts another worker on the same queues (same environment plus `env`, same log, so captured
   * lines come from both); the caller stops it.
   */
  addWorker(env?: Record<string, string>): Promise<RunningWorker>;
  /** Stops the worker, then the API; rejects when either did not release everything in time. */
  stop(): Promise<void>;
}

/** A document to ingest, as `POST /v1/documents` takes it. */
export interface SeedDocument {
  id?: string;
  text: string;
  title?: string;
  metadata?: Record<string, string | number | boolean>;
}

/** Waits until an ingestion has finished and returns its view. */
export async function waitForIngestion(
  url: string,
  id: string,
  headers: Record<string, string> = {},
): Promise<IngestionView> {
  return vi.waitFor(
    async () => {
      const res = await fetch(`${url}/v1/ingestions/${id}`, { headers });
      const view = (await res.json()) as IngestionView;
      if (view.status !== 'completed' && view.status !== 'failed') throw new Error(view.status);
      return view;
    },
    { timeout: 30_000, interval: 20 },
  );
}

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Starts askq with a unique key prefix (so files never share queues, keys or collections). */
export async function startAskq(
  options: {
    env?: Record<string, string>;
    worker?: boolean;
    prefix?: string;
    captureLogs?: boolean;
  } = {},
): Promise<TestAskq> {
  // Captured logs are parsed JSON lines, so tests can check what operators would see.
  const logs: Array<Record<string, unknown>> = [];
  // The product's own logger (its redaction included), writing into the array.
  const log = options.captureLogs
    ? createLogger({
        level: 'info',
        service: 'test',
        destination: {
          write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>),
        },
      })
    : quiet;
  const prefix = options.prefix ?? `t${randomUUID().slice(0, 8)}`;
  const env = {
    REDIS_URL: inject('redisUrl'),
    CHROMA_URL: inject('chromaUrl'),
    REDIS_PREFIX: prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    WORKER_METRICS_PORT: '0',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...options.env,
  };
  const api = await startApi(loadConfig(ApiConfig, env), log);
  const worker =
    options.worker === false ? undefined : await startWorker(loadConfig(WorkerConfig, env), log);
  const url = `http://127.0.0.1:${api.port}`;

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  return {
    url,
    prefix,
    api,
    worker,
    logs,
    post,
    async ask(question, extra = {}) {
      const res = await post('/v1/questions', { question, ...extra });
      // 202: queued or joined; 200: answered from the cache. Either way it has an event stream.
      if (res.status !== 202 && res.status !== 200) {
        throw new Error(`ask answered ${res.status}: ${await res.text()}`);
      }
      const body = (await res.json()) as {
        id: string;
        links: { events: string };
        cached?: boolean;
      };
      return {
        id: body.id,
        events: url + body.links.events,
        status: res.status,
        cached: body.cached === true,
      };
    },
    addWorker: (extra = {}) => startWorker(loadConfig(WorkerConfig, { ...env, ...extra }), log),
    async seed(documents, collection = 'default') {
      const res = await post('/v1/documents', { collection, documents });
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
      const { ingestionId } = (await res.json()) as { ingestionId: string };
      return waitForIngestion(url, ingestionId);
    },
    // Fails the caller's afterAll (so its file) when a process could not release what it held
    // within its shutdown deadline: connections, threads, streams left open are a defect.
    async stop() {
      const workerClean = (await worker?.stop('test finished')) ?? true;
      const apiClean = await api.stop('test finished');
      const unclean = [...(workerClean ? [] : ['worker']), ...(apiClean ? [] : ['api'])];
      if (unclean.length > 0) {
        throw new Error(`askq did not shut down cleanly: ${unclean.join(', ')}`);
      }
    },
  };
}
