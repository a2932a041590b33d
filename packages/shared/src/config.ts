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
  /** Deadline for a graceful shutdown, in milliseconds. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(30_000),
});
export type BaseConfig = z.infer<typeof BaseConfig>;

function isRedisUrl(value: string): boolean {
  return z.url({ protocol: /^rediss?$/ }).safeParse(value.trim()).success;
}

const SECRET = /KEY|SECRET|PASSWORD|TOKEN/;

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
        // Secrets are never echoed, not even in an error message.
        const got = SECRET.test(name)
          ? 'value hidden'
          : `got ${JSON.stringify(cleaned[name] ?? null)}`;
        return `${name}: ${issue.message} (${got})`;
      }),
    );
  }
  return Object.freeze(parsed.data);
}
