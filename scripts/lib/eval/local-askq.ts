// A private askq for `npm run eval`: `npm start` itself (scripts/start.ts: a managed Redis and
// Chroma, the API and a worker) on free ports with its own data folder, loopback only, without
// keys or the sample corpus. Reads no env of its own and never exits: the caller does that.
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { answersOk, spawnManaged, waitFor } from '../managed-process.js';

/** A running private askq. */
export interface LocalAskq {
  /** Base URL of its API. */
  url: string;
  /** The launcher's output, the API's and the worker's logs (Redis's and Chroma's: logs/). */
  logFile: string;
  /** Stops it the way Ctrl-C stops `npm start`: API and worker drain, then the stores. */
  stop(): Promise<void>;
}

/** Options of `startLocalAskq()`. */
export interface LocalAskqOptions {
  /** The repository's root, where scripts/start.ts is. */
  root: string;
  /** Its data folder (Redis, Chroma, logs); the caller creates and removes it. */
  dataDir: string;
  /** The environment it starts from (LLM and embedder settings apply); its own settings win. */
  env: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
}

/** Starts askq and resolves once its API is ready and its worker answers. */
export async function startLocalAskq(options: LocalAskqOptions): Promise<LocalAskq> {
  const { root, dataDir, env } = options;
  const [port, metricsPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const logFile = join(dataDir, 'askq.log');
  const child = spawnManaged('askq', process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: root,
    logFile,
    dieWithParent: true,
    env: {
      ...env,
      PORT: String(port),
      WORKER_METRICS_PORT: String(metricsPort),
      MANAGED_REDIS_PORT: String(redisPort),
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      // Empty is unset for askq's configuration, and keeps .env from setting these: stores of
      // its own, no keys, and no documents but the ones under test.
      REDIS_URL: '',
      CHROMA_URL: '',
      API_KEYS: '',
      ADMIN_API_KEY: '',
      SAMPLE_CORPUS_DIR: '',
      // The offline provider needs no pacing here, and one tenant asks every question.
      EXTRACTIVE_TOKEN_DELAY_MS: env.EXTRACTIVE_TOKEN_DELAY_MS ?? '0',
      RATE_LIMIT_PER_MINUTE: env.RATE_LIMIT_PER_MINUTE ?? '100000',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  try {
    await Promise.all([
      waitFor(answersOk(`${url}/readyz`), {
        timeoutMs,
        what: 'askq',
        exited: child.exited,
        logFile,
      }),
      waitFor(answersOk(`http://127.0.0.1:${metricsPort}/healthz`), {
        timeoutMs,
        what: "askq's worker",
        exited: child.exited,
        logFile,
      }),
    ]);
  } catch (e) {
    await child.stop(5000);
    throw e;
  }
  // Past its own graces (the worker's SHUTDOWN_TIMEOUT_MS and the stores'), it is killed.
  return { url, logFile, stop: () => child.stop(60_000) };
}
