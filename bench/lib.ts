// Shared pieces of the benchmarks: services on free ports, askq as real processes, CPU accounting
// from /proc, and statistics.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChromaServer } from '../scripts/lib/chroma-server.js';
import { TERMINAL_EVENTS } from '../scripts/lib/event-stream.js';
import { freePort } from '../scripts/lib/free-port.js';
import {
  answersOk,
  spawnManaged,
  waitFor,
  type ManagedProcess,
} from '../scripts/lib/managed-process.js';
import { startRedisServer } from '../scripts/lib/redis-server.js';
import { followStream } from './http-client.js';

const root = join(import.meta.dirname, '..');

/** Percentiles and mean of a sample, in its unit. */
export function summarize(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const round = (v: number) => Number(v.toFixed(3));
  return {
    n: sorted.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    max: round(sorted.at(-1) ?? NaN),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

/** a / b rounded for reports. */
export const ratio = (a: number, b: number) => Number((a / b).toFixed(2));

/** Runs `task` `total` times with `concurrency` in flight; returns each latency (ms) and the rate. */
export async function load(total: number, concurrency: number, task: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await task(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  return { latencies, perSecond: Number((total / seconds).toFixed(1)), seconds };
}

/** CPU time (user + system) a process has used so far, in milliseconds, from /proc. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident memory of a process, in MB, from /proc. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Redis and Chroma on free ports with throwaway data. */
export async function startServices() {
  const dir = await mkdtemp(join(tmpdir(), 'askq-bench-'));
  const [redis, chroma] = await Promise.all([
    // Logs to files: stdout carries only the JSON summary.
    startRedisServer({
      port: await freePort(),
      dataDir: join(dir, 'redis'),
      logFile: join(dir, 'redis.log'),
    }),
    startChromaServer({
      port: await freePort(),
      dataDir: join(dir, 'chroma'),
      logFile: join(dir, 'chroma.log'),
    }),
  ]);
  return {
    redisUrl: redis.url,
    chromaUrl: chroma.url,
    redisPid: redis.pid,
    chromaPid: chroma.pid,
    async stop() {
      await Promise.all([redis.stop(), chroma.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** askq's API and one worker as separate processes, as deployed; pids for CPU accounting. */
export async function startBenchProcesses(
  services: { redisUrl: string; chromaUrl: string },
  env: Record<string, string> = {},
) {
  const dir = await mkdtemp(join(tmpdir(), 'askq-bench-logs-'));
  const base = {
    ...process.env,
    REDIS_URL: services.redisUrl,
    CHROMA_URL: services.chromaUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...env,
  };
  const start = async (name: string, entry: string, port: number, probe: string) => {
    const logFile = join(dir, `${name}.log`);
    // BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of each process there when it exits.
    const profile = process.env.BENCH_CPU_PROF_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`]
      : [];
    const child: ManagedProcess = spawnManaged(
      name,
      process.execPath,
      [...profile, '--import', 'tsx', entry],
      {
        cwd: root,
        env: {
          ...base,
          PORT: String(name === 'api' ? port : 0),
          WORKER_METRICS_PORT: String(name === 'worker' ? port : 0),
        },
        logFile,
      },
    );
    await waitFor(answersOk(probe), {
      timeoutMs: 60_000,
      what: name,
      exited: child.exited,
      logFile,
    });
    return child;
  };
  const apiPort = await freePort();
  const workerPort = await freePort();
  const api = await start(
    'api',
    'apps/api/src/main.ts',
    apiPort,
    `http://127.0.0.1:${apiPort}/healthz`,
  );
  const worker = await start(
    'worker',
    'apps/worker/src/main.ts',
    workerPort,
    `http://127.0.0.1:${workerPort}/healthz`,
  );
  return {
    url: `http://127.0.0.1:${apiPort}`,
    apiPid: api.pid,
    workerPid: worker.pid,
    async stop() {
      await Promise.all([api.stop(), worker.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Follows a question's event stream until a terminal event; calls `onEvent` with each event and
 * the time it arrived. node:http, lighter than fetch for thousands of questions.
 */
export function followUntilDone(
  url: string,
  onEvent: (event: string, data: string, at: number) => void = () => undefined,
): Promise<string> {
  return followStream(url, onEvent, (event) => TERMINAL_EVENTS.has(event));
}
