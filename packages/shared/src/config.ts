import { z } from 'zod';

/** Settings every process shares. Units are in the names or the comments. */
export const BaseConfig = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Redis for queues, event logs, results and cache. `npm start` sets it to its managed server.
   * For Redis Cluster, one or more seed nodes separated by commas (docs/SCALING.md).
   */
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6390')
    .refine((value) => value.split(',').every(isRedisUrl), {
      message: 'must be a redis:// or rediss:// URL, or several separated by commas',
    }),
  /** Use the Redis Cluster protocol; implied when REDIS_URL names more than one node. */
  REDIS_CLUSTER: z.stringbool().default(false),
  /**
   * Questions are spread over this many BullMQ queues, each in its own cluster slot, so that
   * more than one Redis master carries the queue (docs/SCALING.md). Every worker consumes all.
   */
  QUEUE_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
  /** Namespace of every Redis key and BullMQ queue, so several deployments can share a server. */
  REDIS_PREFIX: z
    .string()
    .regex(/^[\w-]{1,32}$/)
    .default('askq'),
  /** Chroma server. `npm start` sets it to its managed server. */
  CHROMA_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8000'),
  /** Timeout of each readiness probe of `/readyz` (Redis, Chroma), in milliseconds. */
  READY_TIMEOUT_MS: z.coerce.number().int().positive().default(1_000),
  /**
   * Share of Redis's `maxmemory` at which `/readyz` warns (askq_redis_memory_ratio shows it too):
   * under noeviction a full Redis refuses every write.
   */
  REDIS_MEMORY_WARN_RATIO: z.coerce.number().gt(0).max(1).default(0.9),
  /** How long a finished question, its result and its event log are kept, in seconds. */
  RESULT_TTL_SECONDS: z.coerce.number().int().positive().default(86_400),
  /** Upper bound of one question's event log (approximate trimming). */
  EVENT_LOG_MAX_LEN: z.coerce.number().int().min(100).default(10_000),
  /** OpenAI-compatible embeddings (base URL with `/v1`); unset means the built-in `hash` embedder. */
  EMBEDDINGS_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  EMBEDDINGS_API_KEY: z.string().default('not-needed'),
  EMBEDDINGS_MODEL: z.string().min(1).default('text-embedding-3-small'),
  /** Dimension of the built-in `hash` embedder: fewer buckets mean more collisions (docs/RETRIEVAL.md). */
  HASH_EMBEDDER_DIMENSION: z.coerce.number().int().min(16).max(8_192).default(2048),
  /** How long a cached answer is served, in seconds. */
  CACHE_TTL_SECONDS: z.coerce.number().int().min(1).default(900),
  /**
   * Longest a question may take from enqueue to its end, all attempts included, in milliseconds;
   * past it the question fails with JOB_TIMEOUT.
   */
  JOB_TIMEOUT_MS: z.coerce.number().int().positive().default(120_000),
  /** Longest chunk, in characters (the API estimates chunk counts with it too). */
  CHUNK_SIZE: z.coerce.number().int().min(100).max(20_000).default(800),
  /** Characters of trailing sentences repeated at the start of the next chunk. */
  CHUNK_OVERLAP: z.coerce.number().int().min(0).max(10_000).default(120),
  /**
   * Most chunks one document may make. The API refuses a document whose text would make more at
   * CHUNK_SIZE - CHUNK_OVERLAP characters a chunk; the worker refuses one that does. The default
   * takes any 1 MiB document at the default chunk size (sentences of just over half a chunk make
   * about 2,600); it bounds what a smaller CHUNK_SIZE would let one request write.
   */
  MAX_CHUNKS_PER_DOCUMENT: z.coerce.number().int().positive().default(5_000),
  /** Most chunks one `POST /v1/documents` may make, all its documents together (estimated). */
  MAX_CHUNKS_PER_REQUEST: z.coerce.number().int().positive().default(10_000),
  /** Largest metadata of one document, in bytes of its JSON; it is copied into every chunk. */
  MAX_METADATA_BYTES: z.coerce.number().int().positive().default(4_096),
  /** Most metadata keys of one document. */
  MAX_METADATA_KEYS: z.coerce.number().int().positive().default(32),
  /**
   * How often each worker announces its slots and its answers' mean time in Redis, and how often
   * the API reads them for load shedding, in milliseconds.
   */
  CAPACITY_HEARTBEAT_MS: z.coerce.number().int().min(100).default(1_000),
  /**
   * A process whose event loop has not turned for this long is killed (and replaced by whatever
   * runs it), in milliseconds; 0 turns the watchdog off (e.g. to pause in a debugger).
   */
  WATCHDOG_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  /**
   * Address to listen on (the API, and the worker's metrics server). Unset: 0.0.0.0 with
   * API_KEYS set, 127.0.0.1 without (auth off is never exposed by accident).
   */
  HOST: z.string().min(1).optional(),
  /** Deadline for a graceful shutdown, in milliseconds. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});
export type BaseConfig = z.infer<typeof BaseConfig>;

/**
 * The address a process listens on: HOST when set; otherwise every interface when auth is on,
 * and only this machine (127.0.0.1) when it is off, so that an open askq is never exposed by
 * accident. Serving other machines without auth takes an explicit HOST=0.0.0.0.
 */
export function bindHost(config: { HOST?: string | undefined; API_KEYS?: string | undefined }): {
  host: string;
  /** Whether the host was chosen for the operator (HOST unset). */
  defaulted: boolean;
} {
  if (config.HOST !== undefined) return { host: config.HOST, defaulted: false };
  return { host: config.API_KEYS ? '0.0.0.0' : '127.0.0.1', defaulted: true };
}

function isRedisUrl(value: string): boolean {
  return z.url({ protocol: /^rediss?$/ }).safeParse(value.trim()).success;
}

const SECRET = /KEY|SECRET|PASSWORD|TOKEN/;

/**
 * A value as it may be echoed: the user info of every URL in it (`redis://:pw@host`, also in a
 * comma-separated list, also in one too malformed to parse) is masked.
 */
export function withoutCredentials(value: string): string {
  return value
    .split(',')
    .map((part) => {
      const scheme = part.indexOf('://');
      const at = part.lastIndexOf('@');
      if (scheme < 0 || at < scheme) return part;
      return `${part.slice(0, scheme + 3)}***${part.slice(at)}`;
    })
    .join(',');
}

/** Thrown by loadConfig with every bad variable listed. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once against a schema and freezes the result. Empty strings count as
 * unset, so `FOO=` in a compose file or `.env` falls back to the default instead of failing.
 */
export function loadConfig<S extends z.ZodType<object>>(
  schema: S,
  env: Record<string, string | undefined>,
): Readonly<z.infer<S>> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.') || '(environment)';
        // Secrets are never echoed, not even in an error message, nor a URL's password.
        const value = cleaned[name];
        const got = SECRET.test(name)
          ? 'value hidden'
          : `got ${JSON.stringify(value === undefined ? null : withoutCredentials(value))}`;
        return `${name}: ${issue.message} (${got})`;
      }),
    );
  }
  return Object.freeze(parsed.data);
}
