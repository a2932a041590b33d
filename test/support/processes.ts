import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/lib/free-port.js';
import { spawnManaged, waitFor, type ManagedProcess } from '../../scripts/lib/managed-process.js';

const root = join(import.meta.dirname, '../..');

/** An API or worker running as its own process, as in production. */
export interface AppProcess {
  readonly process: ManagedProcess;
  /** The API's base URL, or the worker's metrics/health base URL. */
  readonly url: string;
  readonly logFile: string;
}

async function spawnApp(
  name: string,
  entry: string,
  env: Record<string, string>,
  portVariable: 'PORT' | 'WORKER_METRICS_PORT',
): Promise<AppProcess> {
  const port = await freePort();
  const logFile = join(await mkdtemp(join(tmpdir(), `askq-${name}-`)), `${name}.log`);
  const child = spawnManaged(name, process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
      [portVariable]: String(port),
    },
    logFile,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, {
    timeoutMs: 60_000,
    what: `${name} on ${url}`,
    exited: child.exited,
    logFile,
  });
  return { process: child, url, logFile };
}

/** Starts `apps/api/src/main.ts` on a free port with the given environment. */
export function spawnApi(env: Record<string, string>): Promise<AppProcess> {
  return spawnApp('api', 'apps/api/src/main.ts', env, 'PORT');
}

/** Starts `apps/worker/src/main.ts` with its metrics on a free port. */
export function spawnWorker(env: Record<string, string>): Promise<AppProcess> {
  return spawnApp(
    'worker',
    'apps/worker/src/main.ts',
    { PORT: '0', ...env },
    'WORKER_METRICS_PORT',
  );
}
