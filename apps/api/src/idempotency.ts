import { createHash } from 'node:crypto';
import type { RedisClient } from '@askq/shared';
import { AppError, type Keys } from '@askq/shared';

/** A response stored under an Idempotency-Key, replayed for a repeat of the same request. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/** What to do with a request that carries an Idempotency-Key. */
export type IdempotencyDecision =
  | { kind: 'new'; complete(response: StoredResponse): Promise<void>; abandon(): Promise<void> }
  | { kind: 'replay'; response: StoredResponse };

interface Stored {
  bodyHash: string;
  response?: StoredResponse;
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Idempotency keys (SPEC 2): the same key and body from the same tenant within the TTL get the
 * first response again; the same key with another body is 422. A request still in progress
 * under the key is a 409, so two concurrent retries cannot both enqueue. The claim of a request
 * in progress lives seconds: a process that dies before it completes frees the key soon.
 */
export function createIdempotency(
  redis: RedisClient,
  keys: Keys,
  options: {
    /** How long a completed request's response is replayed. */
    ttlSeconds: number;
    /** How long a request being accepted holds its key (a crash frees it then). */
    pendingSeconds: number;
  },
) {
  return {
    async begin(tenant: string, key: string, body: unknown): Promise<IdempotencyDecision> {
      if (!KEY.test(key)) {
        throw new AppError(
          'INVALID_REQUEST',
          'Idempotency-Key must be 1-255 visible ASCII characters',
        );
      }
      const keyHash = createHash('sha256').update(key).digest('hex');
      const bodyHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
      const redisKey = keys.idempotency(tenant, keyHash);
      const pending: Stored = { bodyHash };
      const claimed = await redis.set(
        redisKey,
        JSON.stringify(pending),
        'EX',
        options.pendingSeconds,
        'NX',
      );
      if (claimed === 'OK') {
        return {
          kind: 'new',
          complete: async (response) => {
            const done: Stored = { bodyHash, response };
            await redis.set(redisKey, JSON.stringify(done), 'EX', options.ttlSeconds, 'XX');
          },
          abandon: async () => {
            await redis.del(redisKey);
          },
        };
      }
      const raw = await redis.get(redisKey);
      const stored = raw ? (JSON.parse(raw) as Stored) : undefined;
      if (!stored) return this.begin(tenant, key, body); // it expired in between
      if (stored.bodyHash !== bodyHash) {
        throw new AppError(
          'IDEMPOTENCY_MISMATCH',
          'this Idempotency-Key was used with another request body',
        );
      }
      if (!stored.response) {
        throw new AppError('CONFLICT', 'a request with this Idempotency-Key is still in progress', {
          retryAfterSeconds: 1,
        });
      }
      return { kind: 'replay', response: stored.response };
    },
  };
}

/** The idempotency store of the API. */
export type Idempotency = ReturnType<typeof createIdempotency>;
