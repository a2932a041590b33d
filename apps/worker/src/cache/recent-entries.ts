import type { Metadata } from 'chromadb';
import type { RedisClient } from '@askq/shared';
import { cosine } from '../embeddings/cosine.js';

/** A stored entry as a lookup compares it: like a row Chroma returns. */
export interface RecentRow {
  id: string;
  document: string;
  metadata: Metadata;
  /** Cosine distance to the looked-up vector (1 - similarity). */
  distance: number;
}

interface Recent {
  vector: string;
  document: string;
  metadata: Metadata;
}

// Long enough for any Chroma write to land (they take milliseconds; their timeout is seconds),
// short enough that entries of a worker that died before its write do not linger.
const RECENT_TTL_MS = 30_000;

/**
 * Semantic-cache entries between their store and Chroma having them, in one Redis hash per
 * tenant and collection. An entry is written here before the question's `completed`, so a client
 * that rewords its question on seeing it is answered from the cache; the Chroma upsert (an HNSW
 * insert, 10-30 ms) then happens after `completed`, off the answer's path. The hash holds only the
 * writes in flight (each is removed once Chroma has it), so a lookup reads a handful at most.
 */
export function createRecentEntries(redis: RedisClient) {
  return {
    async add(key: string, id: string, vector: number[], document: string, metadata: Metadata) {
      const entry: Recent = {
        // Float32 is what Chroma keeps; base64 of its bytes is a sixth of the JSON.
        vector: Buffer.from(Float32Array.from(vector).buffer).toString('base64'),
        document,
        metadata,
      };
      await redis.multi().hset(key, id, JSON.stringify(entry)).pexpire(key, RECENT_TTL_MS).exec();
    },

    async remove(key: string, id: string) {
      await redis.hdel(key, id);
    },

    /** The entries whose metadata has every field of `where`, with their distance to `vector`. */
    async rows(
      key: string,
      where: Record<string, string | number>,
      vector: number[],
    ): Promise<RecentRow[]> {
      const stored = await redis.hgetall(key);
      const rows: RecentRow[] = [];
      for (const [id, json] of Object.entries(stored)) {
        const entry = JSON.parse(json) as Recent;
        if (!Object.entries(where).every(([field, value]) => entry.metadata[field] === value)) {
          continue;
        }
        const bytes = Buffer.from(entry.vector, 'base64');
        const other = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        rows.push({
          id,
          document: entry.document,
          metadata: entry.metadata,
          distance: 1 - cosine(vector, other),
        });
      }
      return rows;
    },
  };
}
