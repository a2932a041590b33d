import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { isPortFree } from './free-port.js';
import { spawnManaged, waitFor } from './managed-process.js';
import type { ManagedProcess } from './managed-process.js';

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  port: number;
  /** Holds the append-only file; created when missing. */
  dataDir: string;
  logFile?: string;
  /** How long to wait for PING to answer (default 30_000 ms; replaying a large AOF takes time). */
  startTimeoutMs?: number;
  /** Stop with this process even if it is killed (see `spawnManaged`); for `npm start`. */
  dieWithParent?: boolean;
  /** How often the AOF is fsynced: every second (default) or at every write (`always`). */
  appendfsync?: 'everysec' | 'always';
  /** Redis's `maxmemory` ("1gb", "512mb"); unset: no limit but the host's. */
  maxmemory?: string;
}

/** A running managed redis-server. */
export type RedisServer = ManagedProcess & { readonly url: string };

/** Thrown when no `redis-server` executable is on PATH. */
export class RedisServerMissingError extends Error {
  override readonly name = 'RedisServerMissingError';

  constructor() {
    super(
      'redis-server was not found on PATH. Either install it (e.g. `apt-get install redis-server` ' +
        'or `brew install redis`), or set REDIS_URL to an existing Redis, or start one with ' +
        '`docker compose up -d redis` and point REDIS_URL at it.',
    );
  }
}

/** Starts `redis-server` on 127.0.0.1 with AOF persistence and resolves once it answers PING. */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const { port, logFile } = options;
  const executable = await findOnPath('redis-server');
  if (executable === undefined) throw new RedisServerMissingError();
  // A Redis left over from an earlier run would answer our PING and hide our own failed bind.
  if (!(await isPortFree(port))) {
    throw new Error(
      `Port ${port} on 127.0.0.1 is in use (a Redis from an earlier run?): stop that process or set REDIS_URL.`,
    );
  }
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });

  // noeviction: queues and event logs must never be dropped silently under memory pressure.
  // Only the AOF persists (no RDB snapshots): everysec loses at most a second on a crash.
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dataDir,
    '--appendonly', 'yes',
    '--appendfsync', options.appendfsync ?? 'everysec',
    '--maxmemory-policy', 'noeviction',
    // With noeviction a full Redis refuses writes (askq answers 503) instead of the host running
    // out of memory; /readyz and askq_redis_memory_ratio warn before it is full.
    ...(options.maxmemory ? ['--maxmemory', options.maxmemory] : []),
    '--save', '',
    '--daemonize', 'no',
  ]; // prettier-ignore
  const child = spawnManaged('redis', executable, args, {
    logFile,
    dieWithParent: options.dieWithParent,
  });
  try {
    await waitFor(() => answersAsProcess(port, child.pid), {
      timeoutMs: options.startTimeoutMs ?? 30_000,
      what: `redis-server on port ${port}`,
      exited: child.exited,
      logFile,
    });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return Object.assign(child, { url: `redis://127.0.0.1:${port}` });
}

// True once the server on `port` is ours (INFO names our pid) and has finished loading its AOF:
// ioredis's ready check waits for `loading:0` before connect() resolves.
async function answersAsProcess(port: number, pid: number): Promise<boolean> {
  const probe = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // Connection failures are expected while the server starts; connect() reports them.
  probe.on('error', () => {});
  try {
    await probe.connect();
    if ((await probe.ping()) !== 'PONG') return false;
    const info = await probe.info('server');
    return new RegExp(`^process_id:${pid}\\r?$`, 'm').test(info);
  } finally {
    probe.disconnect();
  }
}

/** The full path of an executable `name` in PATH, or undefined. */
export async function findOnPath(
  name: string,
  path = process.env.PATH ?? '',
): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next.
    }
  }
  return undefined;
}
