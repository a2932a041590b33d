import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedis } from './redis.js';

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
