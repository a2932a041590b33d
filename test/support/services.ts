import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChromaServer } from '../../scripts/lib/chroma-server.js';
import { freePort } from '../../scripts/lib/free-port.js';
import type { ManagedProcess } from '../../scripts/lib/managed-process.js';
import { findOnPath, startRedisServer } from '../../scripts/lib/redis-server.js';
import { isCI } from './ci.js';

/** Redis and Chroma for integration tests. */
export interface TestServices {
  readonly redisUrl: string;
  readonly chromaUrl: string;
  /** The servers this call started; empty for those reused from TEST_REDIS_URL / TEST_CHROMA_URL. */
  readonly processes: readonly ManagedProcess[];
  /** Stops the started servers and removes their data; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts redis-server and Chroma on free ports with data in a fresh temporary directory, or reuses
 * the servers named by TEST_REDIS_URL / TEST_CHROMA_URL.
 */
export async function startTestServices(
  env: NodeJS.ProcessEnv = process.env,
): Promise<TestServices> {
  const reuseRedis = nonEmpty(env.TEST_REDIS_URL);
  const reuseChroma = nonEmpty(env.TEST_CHROMA_URL);
  // Released in reverse order of acquisition, each one even when an earlier one fails.
  const closers: (() => Promise<unknown>)[] = [];
  const processes: ManagedProcess[] = [];
  const release = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const close of [...closers].reverse()) {
      await close().catch((error: unknown) => errors.push(error));
    }
    if (errors.length > 0) throw new AggregateError(errors, 'stopping test services failed');
  };

  try {
    let dir: string | undefined;
    if (reuseRedis === undefined || reuseChroma === undefined) {
      const created = await mkdtemp(join(tmpdir(), 'askq-test-'));
      dir = created;
      closers.push(() => rm(created, { recursive: true, force: true }));
    }
    const redisPort = await freePort();
    let chromaPort = await freePort();
    // The OS may hand out a just-released port again.
    while (chromaPort === redisPort) chromaPort = await freePort();
    // Both start at once; the slower one sets the start-up time.
    const [redis, chroma] = await Promise.allSettled([
      reuseRedis === undefined && dir !== undefined
        ? startRedisServer({
            port: redisPort,
            dataDir: join(dir, 'redis'),
            logFile: join(dir, 'redis.log'),
          })
        : undefined,
      reuseChroma === undefined && dir !== undefined
        ? startChromaServer({
            port: chromaPort,
            dataDir: join(dir, 'chroma'),
            logFile: join(dir, 'chroma.log'),
          })
        : undefined,
    ]);
    for (const started of [redis, chroma]) {
      if (started.status === 'fulfilled' && started.value !== undefined) {
        const child = started.value;
        processes.push(child);
        closers.push(() => child.stop());
      }
    }
    if (redis.status === 'rejected') throw redis.reason;
    if (chroma.status === 'rejected') throw chroma.reason;

    let stopping: Promise<void> | undefined;
    return {
      redisUrl: reuseRedis ?? redis.value?.url ?? '',
      chromaUrl: reuseChroma ?? chroma.value?.url ?? '',
      processes,
      stop: () => (stopping ??= release()),
    };
  } catch (error) {
    await release().catch(() => {});
    throw error;
  }
}

/**
 * Why the integration tests cannot run here, or undefined when they can. Never a reason under CI:
 * there a missing redis-server must fail the run, not skip it.
 */
export async function testServicesSkipReason(
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (isCI(env) || nonEmpty(env.TEST_REDIS_URL) !== undefined) return undefined;
  if ((await findOnPath('redis-server', env.PATH)) !== undefined) return undefined;
  return 'redis-server is not on PATH and TEST_REDIS_URL is unset';
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
