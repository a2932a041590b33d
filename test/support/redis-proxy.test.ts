import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { startRedisProxy } from './redis-proxy.js';

// The fault-injection proxy itself: it passes traffic through, holds it from a chosen command on,
// and cuts connections, so that the tests built on it test what they claim.
describe('startRedisProxy', () => {
  const target = () => {
    const url = new URL(inject('redisUrl'));
    return { host: url.hostname, port: Number(url.port) };
  };

  it('passes commands through, holds them from a matching one until healed, then delivers them', async () => {
    const proxy = await startRedisProxy(target());
    const client = new Redis(proxy.url, { maxRetriesPerRequest: 1 });
    try {
      expect(await client.set('proxy:test', 'one')).toBe('OK');
      const seen = proxy.on((c) => c[0] === 'get' && c[1] === 'proxy:test', 'stall');
      let answered = false;
      const held = client.get('proxy:test').then((value) => {
        answered = true;
        return value;
      });
      expect(await seen).toEqual(['get', 'proxy:test']);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(answered).toBe(false);
      proxy.heal();
      expect(await held).toBe('one');
    } finally {
      client.disconnect();
      await proxy.close();
    }
  });

  it('cuts every connection at a matching command, which never reaches Redis', async () => {
    const proxy = await startRedisProxy(target());
    const client = new Redis(proxy.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    const direct = new Redis(inject('redisUrl'));
    try {
      await direct.del('proxy:cut');
      await client.ping();
      const seen = proxy.on((c) => c[0] === 'set' && c[1] === 'proxy:cut', 'cut');
      await expect(client.set('proxy:cut', 'x')).rejects.toThrow();
      await seen;
      expect(await direct.get('proxy:cut')).toBeNull();
    } finally {
      client.disconnect();
      direct.disconnect();
      await proxy.close();
    }
  });
});
