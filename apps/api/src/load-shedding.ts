import { Counter, Gauge, type Registry } from 'prom-client';
import {
  AppError,
  estimateQueueWaitMs,
  readCapacity,
  toError,
  type FleetCapacity,
  type Keys,
  type Logger,
  type QueueBacklog,
  type RedisClient,
} from '@askq/shared';

/**
 * Load shedding at the door (SPEC 7): a new question that the fleet could not start and answer
 * within its time limit is refused with 503 OVERLOADED and a Retry-After, instead of being
 * accepted and failed with JOB_TIMEOUT minutes later. The backlog is read from Redis with each
 * question (in the round trip of its other reads); the fleet's capacity, which changes slowly, is
 * read every interval. Both come from Redis, so every API process decides on the same numbers.
 */
export interface LoadShedder {
  /** The question queue's backlog now, read from Redis. */
  backlog(): Promise<BacklogReading>;
  /**
   * Admits a question queued behind `reading`, or throws OVERLOADED when it would not finish in
   * time. The admission is counted until its job is visible to later readings: call `added` once
   * the job is queued, `abandoned` if it never will be.
   */
  admit(reading: BacklogReading): Admission;
  /** Stops the capacity reads. */
  close(): void;
}

/** A backlog read from Redis, and when the read was sent. */
export interface BacklogReading extends QueueBacklog {
  readAt: number;
}

/** A question admitted by the shedder, on its way into the queue. */
export interface Admission {
  added(): void;
  abandoned(): void;
}

/** A queue whose keys can be named (a BullMQ Queue). */
export interface NamedQueue {
  toKey(type: string): string;
}

/** Builds the shedder; its metrics go on `registry`. */
export function createLoadShedder(options: {
  redis: RedisClient;
  keys: Keys;
  /** Every shard of the question queue. */
  queues: NamedQueue[];
  jobTimeoutMs: number;
  /** Share of the job timeout a new question's estimated wait plus one answer may take. */
  share: number;
  /** How often workers beat, and so how often their capacity is read. */
  intervalMs: number;
  registry: Registry;
  log: Logger;
}): LoadShedder {
  const registers = [options.registry];
  const limitMs = options.share * options.jobTimeoutMs;
  let capacity: FleetCapacity = { slots: 0, serviceMs: undefined };
  let lastEstimateMs = 0;
  // Questions this process admitted whose job a reading may not show yet: not queued yet, or
  // queued after the reading was sent. Concurrent requests read the backlog at the same moment;
  // without these a burst would all see the same short queue and all be let in. (Other API
  // processes' admissions in the same few milliseconds are not seen: the overshoot is that small.)
  let pending = 0;
  // When recent admissions were queued, oldest first; a reading sent after one shows it.
  const queuedAt: number[] = [];
  const unseen = (reading: BacklogReading) => {
    // A reading is sent when its request starts; none is older than this.
    const horizon = Date.now() - 2_000;
    let stale = 0;
    while (stale < queuedAt.length && queuedAt[stale]! < horizon) stale++;
    if (stale > 0) queuedAt.splice(0, stale);
    let first = 0;
    let end = queuedAt.length;
    while (first < end) {
      const mid = (first + end) >>> 1;
      if (queuedAt[mid]! < reading.readAt) first = mid + 1;
      else end = mid;
    }
    return pending + queuedAt.length - first;
  };

  const shed = new Counter({
    name: 'askq_questions_shed_total',
    help: 'New questions refused with 503 OVERLOADED: the queue was too long for them to finish in time.',
    registers,
  });
  new Gauge({
    name: 'askq_queue_estimated_wait_seconds',
    help: 'Estimated queue wait of a question asked now, as of the last one asked (Little’s law over the backlog and the live workers).',
    registers,
    collect() {
      this.set(lastEstimateMs / 1_000);
    },
  });
  new Gauge({
    name: 'askq_worker_slots',
    help: 'Questions the live workers can run at once, from their heartbeats in Redis.',
    registers,
    collect() {
      this.set(capacity.slots);
    },
  });
  new Gauge({
    name: 'askq_question_service_seconds',
    help: 'Mean time a question attempt holds a worker slot, from the workers’ heartbeats (0: not known yet).',
    registers,
    collect() {
      this.set((capacity.serviceMs ?? 0) / 1_000);
    },
  });

  const refresh = async () => {
    try {
      capacity = await readCapacity(options.redis, options.keys, options.intervalMs);
    } catch (e) {
      // Keep the last reading: while Redis is unreachable the question cannot be queued anyway.
      options.log.debug({ err: toError(e) }, 'worker capacity not read');
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), options.intervalMs);
  timer.unref();

  return {
    async backlog() {
      const readAt = Date.now();
      const counts = await Promise.all(
        options.queues.flatMap((queue) => [
          options.redis.llen(queue.toKey('wait')),
          options.redis.zcard(queue.toKey('delayed')),
          options.redis.zcard(queue.toKey('prioritized')),
          options.redis.llen(queue.toKey('active')),
        ]),
      );
      const reading = { waiting: 0, active: 0, readAt };
      counts.forEach((count, i) => {
        if (i % 4 === 3) reading.active += count;
        else reading.waiting += count;
      });
      return reading;
    },

    admit(reading) {
      const backlog = { waiting: reading.waiting + unseen(reading), active: reading.active };
      const waitMs = estimateQueueWaitMs(backlog, capacity);
      if (waitMs !== undefined && capacity.serviceMs !== undefined) {
        lastEstimateMs = waitMs;
        const excess = waitMs + capacity.serviceMs - limitMs;
        if (excess > 0) {
          shed.inc();
          throw new AppError(
            'OVERLOADED',
            `askq is overloaded: a question asked now would wait about ${Math.ceil(waitMs / 1_000)} s for a worker, too long to be answered within its time limit; try again later`,
            { retryAfterSeconds: Math.min(120, Math.max(1, Math.ceil(excess / 1_000))) },
          );
        }
      }
      pending++;
      let settled = false;
      const settle = (queued: boolean) => {
        if (settled) return;
        settled = true;
        pending--;
        if (queued) queuedAt.push(Date.now());
      };
      return { added: () => settle(true), abandoned: () => settle(false) };
    },

    close() {
      clearInterval(timer);
    },
  };
}
