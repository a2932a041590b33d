import { createHash, randomUUID } from 'node:crypto';
import type { RedisClient } from '@askq/shared';
import { AppError, toError, type Keys, type Logger } from '@askq/shared';

/** A response stored under an Idempotency-Key, replayed for a repeat of the same request. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/** What to do with a request that carries an Idempotency-Key. */
export type IdempotencyDecision =
  | {
      kind: 'new';
      /** Stores the response for replays; never throws (the request was accepted either way). */
      complete(response: StoredResponse): Promise<void>;
      /** Frees the key for a retry, unless another request holds it by now. */
      abandon(): Promise<void>;
    }
  | { kind: 'replay'; response: StoredResponse };

interface Stored {
  bodyHash: string;
  /** Names the request that holds a pending key, so that only it frees the key. */
  token?: string;
  response?: StoredResponse;
}

// KEYS: the idempotency key; ARGV: the pending value this request wrote. Deletes the key only
// while it still holds that value: a request whose claim expired must not free a newer one's.
const DELETE_IF_OURS_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

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
  log: Logger,
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
      const pending = JSON.stringify({ bodyHash, token: randomUUID() } satisfies Stored);
      const claimed = await redis.set(redisKey, pending, 'EX', options.pendingSeconds, 'NX');
      if (claimed === 'OK') {
        return {
          kind: 'new',
          complete: async (response) => {
            const done = JSON.stringify({ bodyHash, response } satisfies Stored);
            const stored = await redis
              .set(redisKey, done, 'EX', options.ttlSeconds, 'XX')
              .catch((e: unknown) => {
                log.warn({ err: toError(e), tenant }, 'idempotent response not stored');
                return 'failed';
              });
            // The claim outlived IDEMPOTENCY_PENDING_SECONDS: a retry with this key from now on
            // is taken as a new request.
            if (stored === null) {
              log.warn({ tenant }, 'idempotency claim expired before the request was accepted');
            }
          },
          abandon: async () => {
            await redis.eval(DELETE_IF_OURS_LUA, 1, redisKey, pending);
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
