import { Gauge, type Registry } from 'prom-client';
import { assertRedisVersion, type RedisClient } from './redis.js';
import { deadline } from './deadline.js';

/**
 * A dependency's probe: resolves when it answers (with a warning when it answers but nears a
 * limit), rejects when it does not.
 */
export type ReadinessProbe = () => Promise<string | void>;

/** What `/readyz` reports: every probe's state, and the warnings of those that answered. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
  warnings: string[];
}

/**
 * Runs the probes at once, each bounded by `timeoutMs` (a hung dependency is down, not a hung
 * probe: the timer ends the wait, and a probe given the signal aborts its request too).
 */
export async function checkReadiness(
  probes: Record<string, (signal: AbortSignal) => Promise<string | void>>,
  timeoutMs: number,
): Promise<Readiness> {
  const warnings: string[] = [];
  const entries = await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      const limit = deadline(timeoutMs);
      try {
        const warning = await Promise.race([
          probe(limit.signal),
          new Promise<never>((_, reject) => {
            limit.signal.addEventListener('abort', () => reject(limit.signal.reason as Error));
          }),
        ]);
        if (warning) warnings.push(`${name}: ${warning}`);
        return [name, 'ok'] as const;
      } catch (e) {
        return [name, `down: ${e instanceof Error ? e.message : String(e)}`] as const;
      } finally {
        limit.clear();
      }
    }),
  );
  const checks = Object.fromEntries(entries);
  return { ready: entries.every(([, state]) => state === 'ok'), checks, warnings };
}

/** Redis's memory use against its `maxmemory`, 0..1, the fullest node of a cluster; 0 without one. */
export async function redisMemoryRatio(client: RedisClient): Promise<number> {
  assertConnected(client);
  const nodes = 'nodes' in client ? client.nodes('master') : [client];
  const ratios = await Promise.all(
    nodes.map(async (node) => {
      const info = await node.info('memory');
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
      const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
      return max > 0 ? used / max : 0;
    }),
  );
  return Math.max(0, ...ratios);
}

/**
 * Redis answers, is 7 or later, and is not nearly full: at `warnRatio` of its `maxmemory` the
 * probe warns. Under `noeviction` (askq's policy: queues must never be evicted) a full Redis
 * refuses every write, so every new question and event fails: the warning comes first.
 */
export function redisProbe(client: RedisClient, warnRatio: number): ReadinessProbe {
  return async () => {
    assertConnected(client);
    const [, ratio] = await Promise.all([assertRedisVersion(client), redisMemoryRatio(client)]);
    if (ratio >= warnRatio) {
      return `memory at ${Math.round(ratio * 100)}% of maxmemory; writes fail when it is full`;
    }
  };
}

/** Chroma's heartbeat answers. */
export function chromaProbe(url: string) {
  return async (signal: AbortSignal): Promise<void> => {
    const res = await fetch(new URL('/api/v2/heartbeat', url), { signal });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`heartbeat answered ${res.status}`);
  };
}

/** `askq_redis_memory_ratio`: Redis's memory against its maxmemory, read at scrape time. */
export function registerRedisMemoryGauge(registry: Registry, client: RedisClient): void {
  new Gauge({
    name: 'askq_redis_memory_ratio',
    help: 'Redis used_memory over maxmemory (the fullest cluster node); 0 when Redis has no maxmemory.',
    registers: [registry],
    async collect() {
      // Unreachable: no value rather than a stale one or a failed scrape.
      this.set(await redisMemoryRatio(client).catch(() => Number.NaN));
    },
  });
}

/**
 * Throws unless the connection is up. A probe or a scrape must not send commands to a client
 * that is reconnecting: they would wait in its offline queue until Redis is back, piling up one
 * set per probe, and a scrape would hang with them (every other metric lost with it).
 */
function assertConnected(client: RedisClient): void {
  if (client.status !== 'ready') throw new Error(`not connected (${client.status})`);
}
