import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BaseConfig, ConfigError, loadConfig, withoutCredentials } from './config.js';
import { redisTarget } from './redis.js';

/** Runs loadConfig and returns the ConfigError it throws. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(BaseConfig, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('loadConfig did not throw');
}

describe('loadConfig with BaseConfig', () => {
  it('applies the defaults to an empty environment', () => {
    expect(loadConfig(BaseConfig, {})).toEqual({
      LOG_LEVEL: 'info',
      REDIS_URL: 'redis://127.0.0.1:6390',
      REDIS_CLUSTER: false,
      QUEUE_SHARDS: 1,
      REDIS_PREFIX: 'askq',
      CHROMA_URL: 'http://127.0.0.1:8000',
      READY_TIMEOUT_MS: 1_000,
      REDIS_MEMORY_WARN_RATIO: 0.9,
      RESULT_TTL_SECONDS: 86_400,
      EVENT_LOG_MAX_LEN: 10_000,
      EMBEDDINGS_API_KEY: 'not-needed',
      EMBEDDINGS_MODEL: 'text-embedding-3-small',
      HASH_EMBEDDER_DIMENSION: 2048,
      CACHE_TTL_SECONDS: 900,
      JOB_TIMEOUT_MS: 120_000,
      CHUNK_SIZE: 800,
      CHUNK_OVERLAP: 120,
      MAX_CHUNKS_PER_DOCUMENT: 5_000,
      MAX_CHUNKS_PER_REQUEST: 10_000,
      MAX_METADATA_BYTES: 4_096,
      MAX_METADATA_KEYS: 32,
      CAPACITY_HEARTBEAT_MS: 1_000,
      WATCHDOG_TIMEOUT_MS: 30_000,
      SHUTDOWN_TIMEOUT_MS: 30_000,
    });
  });

  it('treats empty strings as unset so the default applies', () => {
    const config = loadConfig(BaseConfig, {
      REDIS_PREFIX: '',
      RESULT_TTL_SECONDS: '',
      REDIS_URL: '',
      LOG_LEVEL: '',
    });
    expect(config.REDIS_PREFIX).toBe('askq');
    expect(config.RESULT_TTL_SECONDS).toBe(86_400);
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6390');
    expect(config.LOG_LEVEL).toBe('info');
  });

  it('coerces numeric variables and keeps the given values', () => {
    const config = loadConfig(BaseConfig, {
      RESULT_TTL_SECONDS: '60',
      EVENT_LOG_MAX_LEN: '100',
      SHUTDOWN_TIMEOUT_MS: '1500',
      REDIS_URL: 'rediss://cache.example:6380/2',
      REDIS_PREFIX: 'tenant_a-1',
      LOG_LEVEL: 'debug',
    });
    expect(config.RESULT_TTL_SECONDS).toBe(60);
    expect(config.EVENT_LOG_MAX_LEN).toBe(100);
    expect(config.SHUTDOWN_TIMEOUT_MS).toBe(1500);
    expect(config.REDIS_URL).toBe('rediss://cache.example:6380/2');
    expect(config.REDIS_PREFIX).toBe('tenant_a-1');
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('ignores variables the schema does not know', () => {
    const config = loadConfig(BaseConfig, { PATH: '/usr/bin', HOME: undefined });
    expect(config).not.toHaveProperty('PATH');
  });

  it('returns a frozen object', () => {
    const config = loadConfig(BaseConfig, {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { REDIS_PREFIX: string }).REDIS_PREFIX = 'other';
    }).toThrow(TypeError);
    expect(config.REDIS_PREFIX).toBe('askq');
  });

  it('lists every bad variable in one ConfigError', () => {
    const error = configError({
      LOG_LEVEL: 'loud',
      RESULT_TTL_SECONDS: 'abc',
      EVENT_LOG_MAX_LEN: '99',
      REDIS_PREFIX: 'has space',
      SHUTDOWN_TIMEOUT_MS: '1.5',
    });
    expect(error.name).toBe('ConfigError');
    expect(error.problems).toHaveLength(5);
    const names = error.problems.map((p) => p.split(':')[0]);
    expect(names.sort()).toEqual([
      'EVENT_LOG_MAX_LEN',
      'LOG_LEVEL',
      'REDIS_PREFIX',
      'RESULT_TTL_SECONDS',
      'SHUTDOWN_TIMEOUT_MS',
    ]);
    for (const problem of error.problems) expect(error.message).toContain(problem);
  });

  it('shows the offending value in each problem', () => {
    const error = configError({ LOG_LEVEL: 'loud', RESULT_TTL_SECONDS: '-5' });
    expect(error.problems.find((p) => p.startsWith('LOG_LEVEL:'))).toContain('(got "loud")');
    expect(error.problems.find((p) => p.startsWith('RESULT_TTL_SECONDS:'))).toContain('(got "-5")');
  });

  it('rejects non-positive and non-integer numbers', () => {
    expect(configError({ RESULT_TTL_SECONDS: '0' }).problems).toHaveLength(1);
    expect(configError({ RESULT_TTL_SECONDS: '2.5' }).problems).toHaveLength(1);
    expect(configError({ SHUTDOWN_TIMEOUT_MS: '-1' }).problems).toHaveLength(1);
  });

  it('rejects a REDIS_URL with another protocol', () => {
    for (const url of ['http://127.0.0.1:6379', 'redisx://host', 'not a url']) {
      const error = configError({ REDIS_URL: url });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^REDIS_URL: /);
    }
  });

  it('takes a Redis Cluster as several node URLs, and refuses a list with a bad one', () => {
    const nodes = 'redis://10.0.0.1:7000,redis://10.0.0.2:7000, redis://10.0.0.3:7000';
    expect(redisTarget(loadConfig(BaseConfig, { REDIS_URL: nodes }))).toEqual({
      urls: ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000', 'redis://10.0.0.3:7000'],
      cluster: true,
    });
    expect(
      redisTarget(
        loadConfig(BaseConfig, { REDIS_URL: 'rediss://c.example', REDIS_CLUSTER: 'true' }),
      ),
    ).toEqual({ urls: ['rediss://c.example'], cluster: true });
    expect(redisTarget(loadConfig(BaseConfig, {}))).toEqual({
      urls: ['redis://127.0.0.1:6390'],
      cluster: false,
    });
    expect(configError({ REDIS_URL: 'redis://a:1,http://b:2' }).problems[0]).toMatch(
      /^REDIS_URL: /,
    );
    expect(configError({ REDIS_CLUSTER: 'maybe' }).problems[0]).toMatch(/^REDIS_CLUSTER: /);
    expect(configError({ QUEUE_SHARDS: '0' }).problems[0]).toMatch(/^QUEUE_SHARDS: /);
  });

  it('rejects a CHROMA_URL that is not http(s)', () => {
    const error = configError({ CHROMA_URL: 'redis://127.0.0.1:8000' });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^CHROMA_URL: /);
  });

  it('works with a schema that extends BaseConfig', () => {
    const Schema = BaseConfig.extend({ PORT: z.coerce.number().int().default(3000) });
    const config = loadConfig(Schema, { PORT: '8080', REDIS_PREFIX: 'x' });
    expect(config.PORT).toBe(8080);
    expect(config.REDIS_PREFIX).toBe('x');
    expect(config.RESULT_TTL_SECONDS).toBe(86_400);
  });

  it('never echoes the value of a secret in its error', () => {
    const schema = BaseConfig.extend({ LLM_API_KEY: z.string().min(40) });
    const error = (() => {
      try {
        loadConfig(schema, { LLM_API_KEY: 'sk-very-secret' });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error?.message).toContain('LLM_API_KEY');
    expect(error?.message).not.toContain('sk-very-secret');
  });

  it('never echoes the password of a URL in its error, even of one it cannot parse', () => {
    const error = (() => {
      try {
        loadConfig(BaseConfig, {
          REDIS_URL: 'redis://:hunter2@10.0.0.1:6379,redis://user:pa55@10.0.0.2:99999999',
          CHROMA_URL: 'ftp://admin:s3cret@chroma',
        });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error?.message).toContain('REDIS_URL');
    expect(error?.message).toContain('CHROMA_URL');
    expect(error?.message).toContain('10.0.0.2');
    for (const secret of ['hunter2', 'pa55', 's3cret', 'admin']) {
      expect(error?.message).not.toContain(secret);
    }
  });
});

describe('withoutCredentials', () => {
  it('masks user info and leaves everything else', () => {
    expect(withoutCredentials('redis://:pw@host:6379')).toBe('redis://***@host:6379');
    expect(withoutCredentials('http://chroma:8000')).toBe('http://chroma:8000');
    expect(withoutCredentials('not a url @ all')).toBe('not a url @ all');
  });
});
