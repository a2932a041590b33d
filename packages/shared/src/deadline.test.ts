import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadline, withDeadline } from './deadline.js';

// A collection between the request and its deadline is what lost the timeouts this replaces.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage every few milliseconds until `work` settles. */
async function underCollection<T>(work: Promise<T>): Promise<T> {
  const collecting = setInterval(gc, 5);
  try {
    return await work;
  } finally {
    clearInterval(collecting);
  }
}

// A server that takes requests and never answers.
const server = createServer(() => undefined);
let url: string;
beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('deadline', () => {
  it('ends a request to a server that never answers, garbage collected or not', async () => {
    // The shape that lost its timeout: a parent signal, and a Request copied before fetch.
    const parent = new AbortController();
    const error = await underCollection(
      withDeadline(200, parent.signal, (signal) =>
        fetch(new Request(url), { signal }).catch((e: unknown) => e),
      ),
    );
    expect(error).toMatchObject({ name: 'TimeoutError' });
  }, 20_000);

  it('aborts with the parent’s reason when the parent aborts first, and is not timed out', () => {
    const parent = new AbortController();
    const limit = deadline(60_000, undefined, parent.signal);
    parent.abort(new Error('client left'));
    expect(limit.signal.aborted).toBe(true);
    expect((limit.signal.reason as Error).message).toBe('client left');
    expect(limit.timedOut).toBe(false);
    limit.clear();
  });

  it('starts aborted under a parent that already is', () => {
    const limit = deadline(60_000, AbortSignal.abort(new Error('gone')));
    expect(limit.signal.aborted).toBe(true);
    limit.clear();
  });

  it('says it timed out, with a TimeoutError, once the time is up', async () => {
    const limit = deadline(20);
    await once(limit.signal, 'abort');
    expect(limit.timedOut).toBe(true);
    expect(limit.signal.reason).toMatchObject({ name: 'TimeoutError' });
  });

  it('lets go of its parent once cleared: a later abort of the parent no longer reaches it', () => {
    const parent = new AbortController();
    const limit = deadline(60_000, parent.signal);
    limit.clear();
    parent.abort();
    expect(limit.signal.aborted).toBe(false);
  });
});
