import { randomUUID } from 'node:crypto';
import { ChromaClient } from 'chromadb';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startTestServices, testServicesSkipReason } from './services.js';

const skipReason = await testServicesSkipReason();

describe.skipIf(skipReason !== undefined)('test services', () => {
  it('starts redis and chroma, serves requests, and stops both', async () => {
    const services = await startTestServices();
    try {
      const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
      try {
        expect(await redis.ping()).toBe('PONG');
        expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
          'maxmemory-policy',
          'noeviction',
        ]);
      } finally {
        await redis.quit();
      }

      const { hostname, port } = new URL(services.chromaUrl);
      const chroma = new ChromaClient({ host: hostname, port: Number(port), ssl: false });
      expect(await chroma.heartbeat()).toBeGreaterThan(0);
      const collection = await chroma.createCollection({
        name: `test-${randomUUID()}`,
        embeddingFunction: null,
        configuration: { hnsw: { space: 'cosine' } },
      });
      await collection.upsert({
        ids: ['north', 'east'],
        embeddings: [
          [0, 1, 0],
          [1, 0, 0],
        ],
        documents: ['points north', 'points east'],
      });
      const result = await collection.query({ queryEmbeddings: [[0.1, 0.9, 0]], nResults: 2 });
      expect(result.ids[0]).toEqual(['north', 'east']);
      // Cosine space: distance = 1 - cosine similarity.
      expect(result.distances[0]?.[0]).toBeCloseTo(1 - 0.9 / Math.hypot(0.1, 0.9), 5);
    } finally {
      await services.stop();
    }

    for (const child of services.processes) {
      await child.exited;
      expect(() => process.kill(child.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    }
  }, 120_000);
});
