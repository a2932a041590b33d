import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { defineScript } from './redis-script.js';

/**
 * What the worker fleet can do, as every API process reads it from Redis: how many questions the
 * live workers run at once, and how long one occupies a slot. Each worker writes its own entry of
 * one hash every interval; an entry not refreshed for a few intervals is a worker that is gone.
 */
export interface FleetCapacity {
  /** Questions the live workers run at once (the sum of their concurrency). */
  slots: number;
  /** Mean time a question attempt holds a slot, over the workers that have finished any. */
  serviceMs: number | undefined;
}

/** One worker's entry in the capacity hash. */
interface WorkerEntry {
  slots: number;
  serviceMs?: number;
  /** Epoch ms of the heartbeat, by Redis's clock. */
  at: number;
}

// Heartbeats are stamped, and read, by Redis's own clock (TIME): an API host whose clock runs
// ahead of a worker's must not take the worker for gone.
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: the hash. ARGV: worker id, entry JSON without `at`, the hash's TTL.
const BEAT_LUA = `
${NOW}
local entry = cjson.decode(ARGV[2])
entry.at = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

// KEYS: the hash. Returns Redis's time and every entry.
const READ_LUA = `
${NOW}
return { now, redis.call('HGETALL', KEYS[1]) }
`;

function scriptsOf(redis: RedisClient) {
  return {
    beat: defineScript<[id: string, entry: string, ttlMs: number], number>(
      redis,
      'askqCapacityBeat',
      { keys: 1, lua: BEAT_LUA },
    ),
    read: defineScript<[], [number, string[]]>(redis, 'askqCapacityRead', {
      keys: 1,
      lua: READ_LUA,
    }),
  };
}

// A mean over roughly the last 20 attempts: it follows load changes within seconds.
const EWMA_WEIGHT = 0.1;
// Missed heartbeats after which a worker no longer counts.
const STALE_HEARTBEATS = 3;

/** A worker's side: it times its attempts and announces its slots and their mean time. */
export interface CapacityReporter {
  /** Records how long one question attempt held a slot. */
  observe(ms: number): void;
  /** Writes the heartbeat now (also done every interval). */
  beat(): Promise<void>;
  /** Stops the heartbeats and removes this worker's entry. */
  stop(): Promise<void>;
}

/** Starts a worker's heartbeats into the capacity hash, over a connection the caller owns. */
export function createCapacityReporter(
  redis: RedisClient,
  keys: Keys,
  options: { workerId: string; slots: number; intervalMs: number; onError?: (e: unknown) => void },
): CapacityReporter {
  let serviceMs: number | undefined;
  const scripts = scriptsOf(redis);
  const beat = async () => {
    const entry: Omit<WorkerEntry, 'at'> = { slots: options.slots };
    if (serviceMs !== undefined) entry.serviceMs = Math.round(serviceMs);
    // The hash expires if every worker stops beating: its size is bounded by the live workers.
    await scripts.beat(
      [keys.workerCapacity],
      [options.workerId, JSON.stringify(entry), options.intervalMs * STALE_HEARTBEATS * 10],
    );
  };
  const timer = setInterval(() => {
    beat().catch((e: unknown) => options.onError?.(e));
  }, options.intervalMs);
  timer.unref();
  return {
    observe(ms) {
      serviceMs = serviceMs === undefined ? ms : serviceMs + EWMA_WEIGHT * (ms - serviceMs);
    },
    beat,
    async stop() {
      clearInterval(timer);
      await redis.hdel(keys.workerCapacity, options.workerId);
    },
  };
}

/**
 * The fleet's capacity now: live workers only. Entries of workers that stopped beating (killed,
 * partitioned) are left out, and removed, so the hash never outgrows the live fleet.
 */
export async function readCapacity(
  redis: RedisClient,
  keys: Keys,
  intervalMs: number,
): Promise<FleetCapacity> {
  const [now, flat] = await scriptsOf(redis).read([keys.workerCapacity], []);
  const oldest = Number(now) - intervalMs * STALE_HEARTBEATS;
  let slots = 0;
  let timedSlots = 0;
  let weighted = 0;
  const stale: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const id = flat[i]!;
    const entry = parseEntry(flat[i + 1]!);
    if (!entry || entry.at < oldest) {
      stale.push(id);
      continue;
    }
    slots += entry.slots;
    if (entry.serviceMs !== undefined) {
      timedSlots += entry.slots;
      weighted += entry.slots * entry.serviceMs;
    }
  }
  if (stale.length > 0) await redis.hdel(keys.workerCapacity, ...stale);
  return { slots, serviceMs: timedSlots > 0 ? weighted / timedSlots : undefined };
}

function parseEntry(raw: string): WorkerEntry | undefined {
  try {
    const entry = JSON.parse(raw) as Partial<WorkerEntry>;
    if (typeof entry.slots !== 'number' || typeof entry.at !== 'number') return undefined;
    return entry as WorkerEntry;
  } catch {
    return undefined;
  }
}

/** Questions ahead of a new one: waiting (or waiting out a retry's backoff) and running. */
export interface QueueBacklog {
  waiting: number;
  active: number;
}

/**
 * How long a question queued now waits before a slot takes it, by Little's law: the jobs ahead of
 * it beyond the free slots must finish first, and slots free at `slots / serviceMs` per ms.
 * Undefined while there is nothing to go by (no live worker, or none has finished an attempt).
 */
export function estimateQueueWaitMs(
  backlog: QueueBacklog,
  capacity: FleetCapacity,
): number | undefined {
  if (capacity.slots === 0 || capacity.serviceMs === undefined) return undefined;
  const ahead = backlog.waiting + backlog.active + 1 - capacity.slots;
  return ahead <= 0 ? 0 : (ahead * capacity.serviceMs) / capacity.slots;
}
