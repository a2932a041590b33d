import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, it, vi } from 'vitest';
import { createLogger, loadConfig } from '@askq/shared';
import { ApiConfig } from '../../apps/api/src/config.js';
import { startApi } from '../../apps/api/src/server.js';
import { freePort } from '../../scripts/lib/free-port.js';
import { spawnManaged, waitFor } from '../../scripts/lib/managed-process.js';

// SPEC 7: no credential is ever logged. ioredis attaches the failed command to its errors,
// arguments included, and a refused AUTH (or HELLO … AUTH) carries the password: a Redis that
// refuses askq's password must not get that password written to askq's log.
it('never logs a Redis password, even the one Redis refuses', async () => {
  const port = await freePort();
  const logFile = join(await mkdtemp(join(tmpdir(), 'askq-credentials-')), 'redis.log');
  const redis = spawnManaged('redis', 'redis-server', [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--requirepass', 'the-right-password',
    '--save', '',
    '--appendonly', 'no',
  ], { logFile }); // prettier-ignore
  const lines: string[] = [];
  try {
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}`).catch((e: unknown) => e);
        // Redis answers HTTP with an error and closes: it is up once anything answers.
        return !(res instanceof Error) || !/ECONNREFUSED/.test(String(res.cause));
      },
      { timeoutMs: 10_000, what: 'redis-server', exited: redis.exited },
    );
    const log = createLogger({
      level: 'debug',
      service: 'api',
      destination: { write: (line: string) => void lines.push(line) },
    });
    const api = await startApi(
      loadConfig(ApiConfig, {
        REDIS_URL: `redis://:a-wrong-password@127.0.0.1:${port}`,
        CHROMA_URL: inject('chromaUrl'),
        REDIS_PREFIX: 'credentials',
        PORT: '0',
        HOST: '127.0.0.1',
        SHUTDOWN_TIMEOUT_MS: '2000',
      }),
      log,
    );
    try {
      // A request meets the refusal too, and its error is logged with its causes.
      const res = await fetch(`http://127.0.0.1:${api.port}/v1/questions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: 'Anyone there?' }),
      });
      expect(res.status).toBe(503);
      await vi.waitFor(() => expect(lines.join('\n')).toMatch(/WRONGPASS/), { timeout: 10_000 });
    } finally {
      await api.stop('test finished');
    }
    const text = lines.join('\n');
    // The failed command is still named, with its argument count, so the log stays useful.
    expect(text).toMatch(/"command":\{"name":"(?:hello|auth)","args":"\(\d+ hidden\)"\}/);
    expect(text).not.toContain('a-wrong-password');
  } finally {
    await redis.stop();
  }
}, 60_000);
