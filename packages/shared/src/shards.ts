import type { Keys } from './keys.js';

/** One of the BullMQ queues that together carry the questions. */
export interface QueueShard {
  index: number;
  /** BullMQ prefix: its hash tag puts this shard's keys in a cluster slot of its own. */
  prefix: string;
  /** How Bull Board and logs name it. */
  label: string;
}

/**
 * The question queues for QUEUE_SHARDS = count. Shard 0 keeps the unsharded prefix, so going
 * from one shard to several leaves the jobs already queued where every worker still reads them.
 */
export function questionShards(keys: Keys, count: number): QueueShard[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    prefix: index === 0 ? keys.queuePrefix : keys.shardQueuePrefix(index),
    label: count === 1 ? 'questions' : `questions, shard ${index + 1} of ${count}`,
  }));
}

/**
 * The shard of a question, from a hash of its id (FNV-1a). Ids are random, so shards fill evenly
 * whatever the mix of tenants; the API finds a question's job again from its id alone.
 */
export function shardOf(id: string, count: number): number {
  if (count <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % count;
}

/**
 * A worker process's concurrency split between its shard workers: evenly, the remainder to the
 * first shards, at least one each. Shards fill evenly (ids are hashed), so an even split rarely
 * leaves capacity idle; the total is `total`, or `shards` when that is larger.
 */
export function splitConcurrency(total: number, shards: number): number[] {
  return Array.from({ length: shards }, (_, i) =>
    Math.max(1, Math.floor(total / shards) + (i < total % shards ? 1 : 0)),
  );
}
