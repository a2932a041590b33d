import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
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

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('aborts a request past its timeout: nothing else would end it, the server never answers', async () => {
  const client = chromaClientFor(url, { timeoutMs: 200 });
  const error = await client.getCollection({ name: 'never' }).catch((e: unknown) => e);
  // No race around the call any more: only the request's own signal can have ended it.
  expect(error).toBeInstanceOf(Error);
  expect(held.splice(0).length).toBeGreaterThanOrEqual(1);
  // The chromadb client retries a failed connection with a backoff of its own: bounded, but
  // on a loaded machine its attempts of 200 ms each add up past vitest's 5 s default.
}, 30_000);

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
