import { monitorEventLoopDelay } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Registry } from 'prom-client';

/**
 * One metrics registry per process, with Node's default metrics labelled by `service`, and the
 * event loop's lag (see {@link registerEventLoopLag}).
 */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  registerEventLoopLag(registry);
  return registry;
}

// A stall is recorded when the loop gets going again, and the gauge shows the larger of the last
// window and the current one: every stall stays visible for at least a whole window, so the
// default scrape interval (15 s) never misses one.
const LAG_WINDOW_MS = 15_000;

/**
 * `askq_event_loop_lag_seconds`: the longest event-loop delay over the last window, measured
 * continuously (perf_hooks' histogram) rather than sampled at scrape time like prom-client's
 * `nodejs_eventloop_lag_seconds`. A loop held by synchronous work delays every request, event and
 * lock renewal of the process; a worker's held past its lock loses its jobs.
 */
function registerEventLoopLag(registry: Registry): void {
  const delays = monitorEventLoopDelay({ resolution: 10 });
  delays.enable();
  let lastWindowSeconds = 0;
  setInterval(() => {
    lastWindowSeconds = delays.max / 1e9;
    delays.reset();
  }, LAG_WINDOW_MS).unref();
  new Gauge({
    name: 'askq_event_loop_lag_seconds',
    help: `Longest delay of this process's event loop in the last ${LAG_WINDOW_MS / 1_000} s window (or the current one, if longer).`,
    registers: [registry],
    collect() {
      this.set(Math.max(lastWindowSeconds, delays.max / 1e9));
    },
  });
}

// Buckets fit what they measure: Redis steps take milliseconds, LLM calls up to minutes; the
// default buckets (5 ms to 10 s) would squash the first into one bucket and cut off the second.
const QUEUE_WAIT_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];
const STAGE_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240,
];
const QUESTION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240, 600];
const FIRST_TOKEN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30];
const HTTP_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Queue states reported by `askq_queue_jobs` (SPEC 4). */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'failed',
  'completed',
] as const;

/** Something whose job counts can be read at scrape time (a BullMQ Queue). */
export interface CountableQueue {
  readonly name: string;
  getJobCounts(...states: string[]): Promise<Record<string, number>>;
}

/** Every askq metric of SPEC 4; each process registers all of them and fills in its own. */
export interface AskqMetrics {
  queueWait: Histogram;
  stageDuration: Histogram<'stage' | 'outcome'>;
  questionDuration: Histogram<'outcome'>;
  questions: Counter<'outcome' | 'cached'>;
  firstToken: Histogram<'model'>;
  tokens: Counter<'model' | 'kind'>;
  cacheLookups: Counter<'layer' | 'result'>;
  sseConnections: Gauge;
  sseEventsSent: Counter;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  vectorBatchSize: Histogram<'operation'>;
  contentTasks: Histogram<'task' | 'outcome'>;
}

/**
 * Defines askq's metrics on a registry. `queues` are counted at scrape time (a gauge that is
 * always current, at the cost of one Redis round trip per queue per scrape).
 */
export function createAskqMetrics(registry: Registry, queues: CountableQueue[] = []): AskqMetrics {
  const registers = [registry];
  const metrics: AskqMetrics = {
    queueWait: new Histogram({
      name: 'askq_queue_wait_seconds',
      help: 'Time from enqueue to a worker starting the first attempt (retries wait on purpose).',
      buckets: QUEUE_WAIT_BUCKETS,
      registers,
    }),
    stageDuration: new Histogram({
      name: 'askq_stage_duration_seconds',
      help: 'Duration of one pipeline stage of one attempt, including its event writes.',
      labelNames: ['stage', 'outcome'],
      buckets: STAGE_BUCKETS,
      registers,
    }),
    questionDuration: new Histogram({
      name: 'askq_question_duration_seconds',
      help: 'Time from enqueue to the terminal event, all attempts and waits included.',
      labelNames: ['outcome'],
      buckets: QUESTION_BUCKETS,
      registers,
    }),
    questions: new Counter({
      name: 'askq_questions_total',
      help: 'Questions that reached a terminal state, by outcome and whether a cache answered.',
      labelNames: ['outcome', 'cached'],
      registers,
    }),
    firstToken: new Histogram({
      name: 'askq_llm_time_to_first_token_seconds',
      help: 'Time from sending a generation request to its first answer token.',
      labelNames: ['model'],
      buckets: FIRST_TOKEN_BUCKETS,
      registers,
    }),
    tokens: new Counter({
      name: 'askq_llm_tokens_total',
      help: 'Tokens reported by the model server (or counted by the extractive provider).',
      labelNames: ['model', 'kind'],
      registers,
    }),
    cacheLookups: new Counter({
      name: 'askq_cache_lookups_total',
      help: 'Answer cache lookups by layer and result.',
      labelNames: ['layer', 'result'],
      registers,
    }),
    sseConnections: new Gauge({
      name: 'askq_sse_connections',
      help: 'Open event-stream connections of this process.',
      registers,
    }),
    sseEventsSent: new Counter({
      name: 'askq_sse_events_sent_total',
      help: 'Events written to event-stream clients (replayed and live; not pings).',
      registers,
    }),
    httpDuration: new Histogram({
      name: 'askq_http_request_duration_seconds',
      help: 'HTTP request duration until the response is finished (an event stream: until it ends).',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    }),
    vectorBatchSize: new Histogram({
      name: 'askq_vector_batch_size',
      help: 'Queries or stores sent to Chroma in one request: concurrent questions share requests.',
      labelNames: ['operation'],
      buckets: [1, 2, 4, 8, 16, 32],
      registers,
    }),
    contentTasks: new Histogram({
      name: 'askq_content_task_duration_seconds',
      help: 'CPU-bound work on user content on a worker thread (chunking, embedding, extraction, validation), queue wait included; outcome too_complex: ended past its time budget.',
      labelNames: ['task', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };

  // Series that exist before their first event, so dashboards and rates start at zero, not gaps.
  for (const outcome of ['completed', 'failed', 'cancelled']) {
    for (const cached of ['true', 'false']) metrics.questions.labels(outcome, cached).inc(0);
  }
  for (const layer of ['exact', 'semantic']) {
    for (const result of ['hit', 'miss']) metrics.cacheLookups.labels(layer, result).inc(0);
    // A semantic hit refused because its sources are not the question's (answering.ts).
    if (layer === 'semantic') metrics.cacheLookups.labels(layer, 'wrong').inc(0);
  }

  if (queues.length > 0) {
    new Gauge({
      name: 'askq_queue_jobs',
      help: 'Jobs per BullMQ queue and state, read from Redis at scrape time.',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        try {
          const counts = await Promise.all(queues.map((q) => q.getJobCounts(...QUEUE_STATES)));
          // The shards of the question queue share its name: their counts add up.
          this.reset();
          counts.forEach((count, i) => {
            for (const state of QUEUE_STATES) {
              this.inc({ queue: queues[i]!.name, state }, count[state] ?? 0);
            }
          });
        } catch {
          // Redis is unreachable: report no counts rather than stale ones or a failed scrape.
          this.reset();
        }
      },
    });
  }
  return metrics;
}
