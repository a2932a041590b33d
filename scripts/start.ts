// `npm start`: the whole of askq on one machine (SPEC 1). Starts a managed redis-server and a local
// Chroma unless REDIS_URL / CHROMA_URL point elsewhere, then the API and one worker as separate
// processes; prints the URLs; on Ctrl-C stops the API and worker first, then the stores.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { loadConfig, ConfigError, withoutCredentials } from '@askq/shared';
import { startChromaServer } from './lib/chroma-server.js';
import { freePort, isPortFree } from './lib/free-port.js';
import { answersOk, spawnManaged, waitFor, type ManagedProcess } from './lib/managed-process.js';
import { RedisServerMissingError, startRedisServer } from './lib/redis-server.js';

if (existsSync('.env')) process.loadEnvFile('.env');

const StartConfig = z.object({
  PORT: z.coerce.number().int().min(1).max(65_535).default(3000),
  DATA_DIR: z.string().default('./data'),
  // Passed on as it is (one URL, or a cluster's nodes); the apps validate it.
  REDIS_URL: z.string().min(1).optional(),
  CHROMA_URL: z.url().optional(),
  WORKER_METRICS_PORT: z.coerce.number().int().min(1).max(65_535).default(9464),
  /** Port of the managed Redis; another free port is used when it is taken. */
  MANAGED_REDIS_PORT: z.coerce.number().int().min(1).max(65_535).default(6390),
  /** `maxmemory` of the managed Redis (a number with kb, mb or gb): a bound, not the host's RAM. */
  REDIS_MAXMEMORY: z
    .string()
    .regex(/^\d+(?:kb|mb|gb)?$/i, 'a size such as 512mb or 2gb')
    .default('1gb'),
});

let config: z.infer<typeof StartConfig>;
try {
  config = loadConfig(StartConfig, process.env);
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  console.error(`askq: ${e.message}`);
  process.exit(1);
}

/** A start-up problem the user can fix; printed without a stack. */
class StartError extends Error {}

const dataDir = resolve(config.DATA_DIR);
const logDir = join(dataDir, 'logs');
// The API and the worker, by name: the current process of each (a restart replaces it).
const children = new Map<string, ManagedProcess>();
const stores: ManagedProcess[] = [];
const say = (line: string) => console.log(`askq | ${line}`);

async function startRedis(): Promise<string> {
  if (config.REDIS_URL) return config.REDIS_URL;
  let port = config.MANAGED_REDIS_PORT;
  if (!(await isPortFree(port))) {
    port = await freePort();
    say(`port ${config.MANAGED_REDIS_PORT} is taken; the managed Redis uses ${port}`);
  }
  const redis = await startRedisServer({
    port,
    dataDir: join(dataDir, 'redis'),
    logFile: join(logDir, 'redis.log'),
    maxmemory: config.REDIS_MAXMEMORY,
    // A launcher killed outright (SIGKILL) must not leave Redis holding the port for next time.
    dieWithParent: true,
  });
  stores.push(redis);
  return redis.url;
}

async function startChroma(): Promise<string> {
  if (config.CHROMA_URL) return config.CHROMA_URL;
  const chroma = await startChromaServer({
    port: await freePort(),
    dataDir: join(dataDir, 'chroma'),
    logFile: join(logDir, 'chroma.log'),
    dieWithParent: true,
  });
  stores.push(chroma);
  return chroma.url;
}

// A child that dies (killed, or ended by its own watchdog because its event loop hung) is started
// again, after a pause that grows; one that keeps dying is a fault to report, not to hide.
const RESTARTS_PER_MINUTE = 5;

function startNode(name: string, entry: string, env: NodeJS.ProcessEnv): ManagedProcess {
  const restarts: number[] = [];
  const spawnOne = (): ManagedProcess => {
    const child = spawnManaged(name, process.execPath, ['--import', 'tsx', entry], {
      env: { ...process.env, ...env },
      ipc: true,
      // SIGTERM from the kernel if this launcher is killed outright: no child outlives it.
      dieWithParent: true,
    });
    children.set(name, child);
    void child.exited.then((code) => {
      if (stopping) return;
      const how = code === null ? 'was killed' : `exited with code ${code}`;
      const now = Date.now();
      while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
      if (restarts.length >= RESTARTS_PER_MINUTE) {
        say(
          `${name} ${how}, the ${RESTARTS_PER_MINUTE + 1}th time in a minute; stopping everything`,
        );
        void stopAll(1);
        return;
      }
      restarts.push(now);
      const delayMs = 500 * restarts.length;
      say(`${name} ${how}; starting it again in ${delayMs} ms`);
      setTimeout(() => {
        if (!stopping) spawnOne();
      }, delayMs);
    });
    return child;
  };
  return spawnOne();
}

let stopping = false;
let stopped: Promise<void> | undefined;
async function stopAll(exitCode: number): Promise<void> {
  stopping = true;
  stopped ??= (async () => {
    // API and worker first (they drain and close their Redis connections), then the stores.
    // Past the grace (their SHUTDOWN_TIMEOUT_MS and a little), a child that did not end is killed.
    await Promise.allSettled([...children.values()].map((c) => c.stop(35_000)));
    await Promise.allSettled(stores.map((s) => s.stop(10_000)));
    say('stopped');
    process.exit(exitCode);
  })();
  return stopped;
}

// A terminal's Ctrl-C reaches npm and this process, and npm forwards its copy too: signals within
// a moment of the first are that same Ctrl-C, not a second one asking to force.
const SAME_SIGNAL_MS = 500;
let firstSignalAt = 0;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    const now = Date.now();
    if (firstSignalAt > 0 && now - firstSignalAt < SAME_SIGNAL_MS) return;
    if (firstSignalAt > 0) {
      say('second signal: killing everything now');
      for (const p of [...children.values(), ...stores]) void p.stop(0);
      setTimeout(() => process.exit(1), 500).unref();
      return;
    }
    firstSignalAt = now;
    say(`${signal}: stopping (press Ctrl-C again to force)`);
    void stopAll(0);
  });
}

try {
  // A taken port would make the child fail, or worse, let another server answer our probes.
  for (const [name, port] of [
    ['PORT', config.PORT],
    ['WORKER_METRICS_PORT', config.WORKER_METRICS_PORT],
  ] as const) {
    if (!(await isPortFree(port))) {
      throw new StartError(`port ${port} is taken; set ${name} to a free port`);
    }
  }
  await mkdir(logDir, { recursive: true });
  const [redisUrl, chromaUrl] = await Promise.all([startRedis(), startChroma()]);
  const env = {
    REDIS_URL: redisUrl,
    CHROMA_URL: chromaUrl,
    PORT: String(config.PORT),
    WORKER_METRICS_PORT: String(config.WORKER_METRICS_PORT),
  };
  const api = startNode('api', 'apps/api/src/main.ts', env);
  const worker = startNode('worker', 'apps/worker/src/main.ts', {
    ...env,
    SAMPLE_CORPUS_DIR: process.env.SAMPLE_CORPUS_DIR ?? resolve('corpus/sample'),
    // The offline provider answers at once; a short pace shows the answer streaming.
    EXTRACTIVE_TOKEN_DELAY_MS: process.env.EXTRACTIVE_TOKEN_DELAY_MS ?? '15',
  });
  const base = `http://localhost:${config.PORT}`;
  // Probed where they listen: with auth off (no API_KEYS) only 127.0.0.1, which `localhost` may
  // not resolve to first.
  const listening = process.env.HOST ?? '127.0.0.1';
  const probeHost = ['0.0.0.0', '::'].includes(listening)
    ? '127.0.0.1'
    : listening.includes(':')
      ? `[${listening}]`
      : listening;
  await Promise.all([
    waitFor(answersOk(`http://${probeHost}:${config.PORT}/readyz`), {
      timeoutMs: 60_000,
      what: 'the API',
      exited: api.exited,
    }),
    waitFor(answersOk(`http://${probeHost}:${config.WORKER_METRICS_PORT}/healthz`), {
      timeoutMs: 120_000,
      what: 'the worker (it loads the sample corpus on first start)',
      exited: worker.exited,
    }),
  ]);
  console.log(
    [
      '',
      'askq is ready',
      `  demo page        ${base}/`,
      `  API              ${base}/v1/questions  (reference: ${base}/docs)`,
      `  health           ${base}/healthz  ${base}/readyz`,
      `  Bull Board       ${base}/admin/queues`,
      `  metrics          ${base}/metrics  (worker: http://localhost:${config.WORKER_METRICS_PORT}/metrics)`,
      `  Redis            ${withoutCredentials(redisUrl)}${stores.length ? ' (managed)' : ''}`,
      `  Chroma           ${withoutCredentials(chromaUrl)}`,
      `  data and logs    ${dataDir}`,
      '',
      'Try it:',
      `  curl -s -X POST ${base}/v1/questions -H 'content-type: application/json' \\`,
      `       -d '{"question":"How do I resume an event stream?"}'`,
      `  curl -N ${base}/v1/questions/<id>/events`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
} catch (e) {
  if (e instanceof RedisServerMissingError || e instanceof StartError)
    console.error(`askq: ${e.message}`);
  else console.error(`askq: start-up failed: ${e instanceof Error ? e.message : String(e)}`);
  await stopAll(1);
}
