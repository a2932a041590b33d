import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AppError } from '@askq/shared';
import { chromaClientFor, createChromaStore } from './chroma-store.js';

// A Chroma that takes requests and never answers: a timed-out request must be aborted (the
// server sees it go), not left running behind a caller that gave up.
const held: IncomingMessage[] = [];
const server = createServer((req) => {
  held.push(req);
});
let url: string;

// Garbage collected while a request waits: how the timeouts of an earlier version were lost (a
// Request copied from another follows its signal only weakly), hanging this test on a busy machine.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('aborts a request past its timeout, garbage collected meanwhile: the server never answers', async () => {
  const client = chromaClientFor(url, { timeoutMs: 200 });
  const collecting = setInterval(gc, 5);
  const error = await client
    .getCollection({ name: 'never' })
    .catch((e: unknown) => e)
    .finally(() => clearInterval(collecting));
  // No race around the call: only the request's own deadline can have ended it.
  expect(error).toBeInstanceOf(Error);
  expect(held.splice(0)).toHaveLength(1);
}, 20_000);

it('fails a store call past its timeout as RETRIEVAL_FAILED, retryable, saying why', async () => {
  const store = createChromaStore({ url, prefix: 'p', timeoutMs: 200 });
  const error = await store
    .query({ tenant: 't', collection: 'c' }, [1, 0], 4)
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  expect(error).toMatchObject({ code: 'RETRIEVAL_FAILED', retryable: true });
  expect((error as Error).message).toContain('no answer within 200 ms');
  held.splice(0);
}, 30_000);

it('aborts a response whose body stops coming: the deadline bounds the body too', async () => {
  const stalling = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"id": ');
  });
  stalling.listen(0, '127.0.0.1');
  await once(stalling, 'listening');
  const { port } = stalling.address() as AddressInfo;
  try {
    const client = chromaClientFor(`http://127.0.0.1:${port}`, { timeoutMs: 200 });
    const error = await client.getCollection({ name: 'never' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'TimeoutError' });
  } finally {
    stalling.closeAllConnections();
    await new Promise((resolve) => stalling.close(resolve));
  }
}, 20_000);
