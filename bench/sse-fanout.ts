// sse-fanout: N concurrent event streams (1k / 5k / 10k) each receiving 10 events/s, through
// askq's API (event log in Redis -> one subscriber per API process -> SSE) and through a bare
// node:http SSE server in its own process doing the same; delivery latency, share delivered,
// RSS and CPU of the serving process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createEventLog, createKeys } from '@askq/shared';
import { cpuMs, ratio, rssMb, startBenchProcesses, startServices, summarize } from './lib.js';
import { createClients } from './sse-clients.js';
import type { BenchOptions } from './run.js';

const EVENTS_PER_SECOND = 10;
const INTERVAL_MS = 1_000 / EVENTS_PER_SECOND;
const DRAIN_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 30_000;

/** Epoch milliseconds with sub-millisecond precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

const SSE_HEAD = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/**
 * The reference: a bare node:http SSE server, run as its own process. On `run` it writes one token
 * frame (stamped with its send time) to every open response at 10 ticks/s, then reports `done`.
 */
const BARE_SERVER = `
import http from 'node:http';
const HEAD = ${JSON.stringify(SSE_HEAD)};
const open = new Set();
const now = () => performance.timeOrigin + performance.now();
const server = http.createServer((req, res) => {
  res.writeHead(200, HEAD);
  res.write('retry: 2000\\n\\nid: 0\\nevent: status\\ndata: {"status":"queued","attempt":1}\\n\\n');
  open.add(res);
  const ping = setInterval(() => res.write(': ping\\n\\n'), 15000);
  res.on('close', () => { open.delete(res); clearInterval(ping); });
});
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
let n = 0;
process.on('message', (m) => {
  if (m.type === 'count') process.send({ type: 'count', open: open.size });
  if (m.type !== 'run') return;
  const start = performance.now();
  const scheduledStart = now();
  let k = 0;
  const tick = () => {
    n += 1;
    const text = now() + ' ' + (scheduledStart + k * m.intervalMs);
    const frame = 'id: ' + n + '\\nevent: token\\ndata: {"text":"' + text + '","attempt":1}\\n\\n';
    for (const res of open) res.write(frame);
    k += 1;
    if (k >= m.ticks) return void process.send({ type: 'done' });
    setTimeout(tick, Math.max(0, start + k * m.intervalMs - performance.now()));
  };
  tick();
});
process.on('disconnect', () => process.exit(0));
`;

/** The bare server child and its IPC. */
async function startBareServer() {
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', BARE_SERVER], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: string, timeoutMs: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error(`bare server: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (m: Record<string, unknown>) => {
        if (m.type !== type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m);
      };
      child.on('message', onMessage);
    });
  const listening = await next('listening', 10_000);
  return {
    url: `http://127.0.0.1:${String(listening.port)}`,
    pid: child.pid ?? 0,
    async openStreams() {
      child.send({ type: 'count' });
      return Number((await next('count', 5_000)).open);
    },
    /** Resolves once the child has sent its last tick. */
    async run(ticks: number) {
      const done = next('done', ticks * INTERVAL_MS + 30_000);
      child.send({ type: 'run', ticks, intervalMs: INTERVAL_MS });
      await done;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Waits until `count()` reports `target` open streams on the server, or gives up. */
async function waitForOpen(count: () => Promise<number>, target: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  let last = NaN;
  while (performance.now() < deadline) {
    last = await count().catch(() => NaN);
    if (last === target) return last;
    await sleep(100);
  }
  return last;
}

interface Target {
  pid: number;
  /** One URL per client. */
  urls(clients: number): Promise<string[]>;
  /** Sends `ticks` events to every question/stream at 10/s; resolves after the last. */
  publish(ticks: number): Promise<void>;
  openStreams(): Promise<number>;
}

/** One size against one server: connect, publish, drain, measure, close. */
async function measure(target: Target, clients: number, ticks: number) {
  const urls = await target.urls(clients);
  const rssIdle = await rssMb(target.pid);
  const streams = createClients();
  try {
    const connectStarted = performance.now();
    await streams.connect(urls);
    const connectSeconds = (performance.now() - connectStarted) / 1_000;
    await sleep(500);
    const rssConnected = await rssMb(target.pid);
    const expected = clients * ticks;

    const cpuBefore = await cpuMs(target.pid);
    const selfBefore = process.cpuUsage();
    const started = performance.now();
    await target.publish(ticks);
    const publishSeconds = (performance.now() - started) / 1_000;
    const drainDeadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (streams.latencies.length < expected && performance.now() < drainDeadline) {
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1_000;
    const cpu = (await cpuMs(target.pid)) - cpuBefore;
    const self = process.cpuUsage(selfBefore);
    const rssEnd = await rssMb(target.pid);

    const received = streams.latencies.length;
    return {
      delivered: Number((received / expected).toFixed(5)),
      received,
      expected,
      latencyMs: summarize(streams.latencies),
      latencyFromScheduleMs: summarize(streams.fromSchedule),
      rssMb: {
        idle: Math.round(rssIdle),
        connected: Math.round(rssConnected),
        end: Math.round(rssEnd),
        perStreamKb: Math.round(((rssConnected - rssIdle) * 1024) / clients),
      },
      cpuPercent: Math.round((cpu / (seconds * 1_000)) * 100),
      cpuUsPerEvent: Number(((cpu * 1_000) / Math.max(1, received)).toFixed(1)),
      seconds: Number(seconds.toFixed(1)),
      // Below 10 when the sender fell behind its schedule (latency is from the actual send).
      sentPerSecond: Number((ticks / publishSeconds).toFixed(1)),
      benchClientCpuPercent: Math.round(
        ((self.user + self.system) / 1_000 / (seconds * 1_000)) * 100,
      ),
      connectSeconds: Number(connectSeconds.toFixed(1)),
      errors: streams.errors,
      endedEarly: streams.endedEarly,
    };
  } finally {
    streams.close();
    const open = await waitForOpen(() => target.openStreams(), 0, CLOSE_TIMEOUT_MS);
    if (open !== 0) console.error(`sse-fanout: ${String(open)} streams still open after close`);
  }
}

/**
 * Ticks at 10/s without drift; `tick` gets the time the tick was due (epoch ms) and is not awaited,
 * so a slow tick never delays the next.
 */
async function everyInterval(ticks: number, tick: (scheduled: number) => Promise<unknown>) {
  const start = performance.now();
  const scheduledStart = now();
  const inFlight: Array<Promise<unknown>> = [];
  for (let k = 0; k < ticks; k += 1) {
    const wait = start + k * INTERVAL_MS - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(tick(scheduledStart + k * INTERVAL_MS));
  }
  await Promise.all(inFlight);
}

export async function sseFanout(options: BenchOptions) {
  const sizes = options.smoke ? [50, 100] : [1_000, 5_000, 10_000];
  const seconds = options.smoke ? 2 : 10;
  const ticks = seconds * EVENTS_PER_SECOND;
  const questions = options.smoke ? 10 : 100;
  const prefix = process.env.REDIS_PREFIX ?? 'askq';

  const services = await startServices();
  let askq: Awaited<ReturnType<typeof startBenchProcesses>> | undefined;
  let bare: Awaited<ReturnType<typeof startBareServer>> | undefined;
  let redis: Redis | undefined;
  try {
    // One tenant opens every stream here: its quotas would refuse the thousands of them.
    askq = await startBenchProcesses(services, {
      REDIS_PREFIX: prefix,
      TENANT_MAX_STREAMS: '1000000',
      READ_RATE_LIMIT_PER_MINUTE: '100000000',
    });
    bare = await startBareServer();
    redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
    const events = createEventLog(redis, createKeys(prefix), { maxLen: 10_000, ttlSeconds: 3_600 });
    const api = askq;
    const reference = bare;
    const run = `${Date.now().toString(36)}`;

    const results = [];
    for (const clients of sizes) {
      // Fresh questions per size, so a new stream's replay holds only the `status` event.
      const ids = Array.from({ length: questions }, (_, q) => `sse-${run}-${clients}-${q}`);
      const askqTarget: Target = {
        pid: api.apiPid,
        async urls(n) {
          await Promise.all(
            ids.map((id) =>
              events.append(
                id,
                { event: 'status', data: { status: 'queued', attempt: 1 } },
                {
                  set: {
                    tenant: 'default',
                    question: 'bench',
                    collection: 'default',
                    model: 'auto',
                    topK: '4',
                    cache: 'false',
                    status: 'queued',
                    createdAt: String(Date.now()),
                    attempts: '0',
                  },
                },
              ),
            ),
          );
          return Array.from(
            { length: n },
            (_, i) => `${api.url}/v1/questions/${ids[i % questions] ?? ''}/events`,
          );
        },
        publish: (n) =>
          everyInterval(n, (scheduled) => {
            const text = `${String(now())} ${String(scheduled)}`;
            return Promise.all(
              ids.map((id) => events.append(id, { event: 'token', data: { text, attempt: 1 } })),
            );
          }),
        async openStreams() {
          const body = await (await fetch(`${api.url}/metrics`)).text();
          return Number(/^askq_sse_connections(?:\{[^}]*\})? (\d+)/m.exec(body)?.[1] ?? NaN);
        },
      };
      const bareTarget: Target = {
        pid: reference.pid,
        urls: (n) =>
          Promise.resolve(
            Array.from({ length: n }, (_, i) => `${reference.url}/events/${String(i % questions)}`),
          ),
        publish: (n) => reference.run(n),
        openStreams: () => reference.openStreams(),
      };

      const a = await measure(askqTarget, clients, ticks);
      const b = await measure(bareTarget, clients, ticks);
      results.push({
        clients,
        askq: a,
        bareNodeHttp: b,
        ratio: {
          p50: ratio(a.latencyMs.p50, b.latencyMs.p50),
          p99: ratio(a.latencyMs.p99, b.latencyMs.p99),
          p99FromSchedule: ratio(a.latencyFromScheduleMs.p99, b.latencyFromScheduleMs.p99),
        },
      });
    }
    return {
      bench: 'sse-fanout',
      eventsPerSecond: EVENTS_PER_SECOND,
      seconds,
      questions,
      clientsPerQuestion: sizes.map((n) => n / questions),
      target: 'delivered >= 0.999 and askq p99 <= 1.5 x bare node:http p99',
      latency:
        'arrival minus the send time carried by the event (askq: stamped by the publisher before ' +
        'its append; bare: by the server before its writes); latencyFromSchedule: minus the time ' +
        'the tick was due, so a sender that falls behind 10/s is charged for it',
      results,
    };
  } finally {
    redis?.disconnect();
    await bare?.stop();
    await askq?.stop();
    await services.stop();
  }
}
