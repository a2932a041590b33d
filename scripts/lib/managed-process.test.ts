import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { answersOk, spawnManaged, waitFor } from './managed-process.js';

// A child that ignores SIGTERM stands in for one whose event loop is stuck: it never exits on
// its own, so only the SIGKILL that follows can end it.
async function stubborn() {
  const logFile = join(await mkdtemp(join(tmpdir(), 'askq-stubborn-')), 'out.log');
  const child = spawnManaged(
    'stubborn',
    process.execPath,
    ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000); console.log('up')"],
    { logFile },
  );
  // Its handler is installed once it says so; a SIGTERM before that would end it at once.
  await waitFor(async () => (await readFile(logFile, 'utf8')).includes('up'), {
    timeoutMs: 10_000,
    what: 'the stubborn child',
    exited: child.exited,
  });
  return child;
}

describe('spawnManaged', () => {
  it('kills a child that ignores SIGTERM once its grace is over', async () => {
    const child = await stubborn();
    const started = performance.now();
    await child.stop(300);
    expect(await child.exited).toBeNull(); // ended by a signal
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('brings the SIGKILL forward when stopped again with less grace (a second Ctrl-C)', async () => {
    const child = await stubborn();
    const started = performance.now();
    const first = child.stop(60_000);
    const second = child.stop(0);
    await Promise.all([first, second]);
    expect(await child.exited).toBeNull();
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('answersOk', () => {
  it('says whether a server answers 2xx, and gives up on one that never answers', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/ok') res.end('fine');
      else if (req.url === '/busy') res.writeHead(503).end();
      // '/hung': taken and never answered
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(await answersOk(`${base}/ok`)()).toBe(true);
      expect(await answersOk(`${base}/busy`)()).toBe(false);
      await expect(answersOk(`${base}/hung`, 100)()).rejects.toMatchObject({
        name: 'TimeoutError',
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
