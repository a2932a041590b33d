import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { assertRedisVersion, createRedis } from './redis.js';

describe('createRedis', () => {
  it('auto-pipelines a single server when asked, and never a cluster', () => {
    // Port 1 refuses: nothing here needs a server, only the options the clients were built with.
    const single = createRedis('redis://127.0.0.1:1', 'worker', 'single', {
      enableAutoPipelining: true,
    });
    const cluster = createRedis(
      { urls: ['redis://127.0.0.1:1'], cluster: true },
      'worker',
      'cluster',
      { enableAutoPipelining: true },
    );
    try {
      expect(single).toBeInstanceOf(Redis);
      expect((single as Redis).options.enableAutoPipelining).toBe(true);
      expect(cluster).toBeInstanceOf(Cluster);
      expect((cluster as Cluster).options.enableAutoPipelining).toBe(false);
    } finally {
      for (const client of [single, cluster]) {
        client.on('error', () => undefined);
        client.disconnect();
      }
    }
  });
});

describe('assertRedisVersion', () => {
  // Only this machine's Redis 7 can run here, so older servers are their INFO replies.
  const server = (info: string) => ({ info: () => Promise.resolve(info) });

  it('accepts Redis 7 and later, and refuses older servers by version', async () => {
    await expect(assertRedisVersion(server('# Server\r\nredis_version:7.0.15\r\n'))).resolves.toBe(
      undefined,
    );
    await expect(assertRedisVersion(server('redis_version:8.2.1\r\n'))).resolves.toBe(undefined);
    await expect(assertRedisVersion(server('redis_version:6.2.14\r\n'))).rejects.toThrow(
      /Redis 6\.2\.14 is too old: askq needs Redis 7\.0 or later/,
    );
    await expect(assertRedisVersion(server('# Server\r\n'))).rejects.toThrow(/version unknown/);
  });
});
