import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AskqMetrics, EventLog, LoggedEvent } from '@askq/shared';
import type { EventHub } from './event-hub.js';
import { createFollower } from './follow.js';
import type { TenantQuotas } from './quotas.js';
import { createSseRegistry } from './sse.js';

// The follower's lease and lifecycle against fakes: a stream lease must be let go however the
// request ends, or the tenant's open streams fill up with clients long gone.

const HEARTBEAT_MS = 100;

function fakes(logged: LoggedEvent[] = []) {
  const counts = { renews: 0, releases: 0, leases: 0 };
  const quotas: TenantQuotas = {
    openStream: () => {
      counts.leases++;
      return Promise.resolve({
        renew: () => {
          counts.renews++;
          return Promise.resolve();
        },
        release: () => {
          counts.releases++;
          return Promise.resolve();
        },
      });
    },
    queueIngestion: () => Promise.reject(new Error('not used')),
  };
  const hub: EventHub = { subscribe: () => Promise.resolve(() => undefined) };
  const events: EventLog = {
    append: () => Promise.reject(new Error('not used')),
    appendAll: () => Promise.reject(new Error('not used')),
    read: () => Promise.resolve(logged),
  };
  const gauge = { inc: () => undefined, dec: () => undefined };
  const streams = createSseRegistry();
  const follower = createFollower({
    hub,
    events,
    streams,
    log: pino({ level: 'silent' }),
    metrics: { sseEventsSent: gauge, sseConnections: gauge } as unknown as AskqMetrics,
    quotas,
    options: { heartbeatMs: HEARTBEAT_MS, maxBufferBytes: 1 << 20, retryMs: 2_000 },
  });
  return { counts, follower, streams };
}

/** A response as the follower uses it; `written` is what the client would have received. */
function fakeResponse() {
  const emitter = new EventEmitter();
  const written: string[] = [];
  const res = Object.assign(emitter, {
    closed: false,
    writableEnded: false,
    writableLength: 0,
    write: (chunk: Buffer | string) => {
      written.push(String(chunk));
      return true;
    },
    end: (chunk?: string) => {
      if (chunk) written.push(chunk);
      res.writableEnded = true;
      res.leave();
    },
    destroy: () => res.leave(),
    leave: () => {
      if (res.closed) return;
      res.closed = true;
      emitter.emit('close');
    },
  });
  return { res, asResponse: res as unknown as Response, written };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createFollower', () => {
  it('lets go of the lease of a client that left before its stream opened', async () => {
    vi.useFakeTimers();
    const { counts, follower } = fakes();
    const { res, asResponse } = fakeResponse();
    // The OpenAI routes open a stream only after asking the question: the client may be gone.
    res.leave();
    await follower.open('acme', 'q1', asResponse).serve(() => undefined);
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS * 5);
    expect(counts).toEqual({ leases: 1, releases: 1, renews: 0 });
  });

  it('lets go of a reserved lease too, and renews an open stream’s until its client leaves', async () => {
    vi.useFakeTimers();
    const { counts, follower } = fakes();
    const { res, asResponse } = fakeResponse();
    const lease = follower.reserve('acme');
    const serving = follower.open('acme', 'q1', asResponse, { lease }).serve(() => undefined);
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS * 3 + 1);
    expect(counts.renews).toBe(3);
    res.leave();
    await serving;
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS * 3);
    expect(counts).toEqual({ leases: 1, releases: 1, renews: 3 });
  });

  it('says its farewell when shutdown ends it, so an OpenAI client knows it was cut', async () => {
    const { follower, streams } = fakes();
    const { asResponse, written } = fakeResponse();
    void follower
      .open('acme', 'q1', asResponse, { farewell: () => 'data: {"error":{}}\n\n' })
      .serve(() => undefined);
    await vi.waitFor(() => expect(streams.size).toBe(1));
    streams.closeAll();
    expect(written.at(-1)).toBe('data: {"error":{}}\n\n');
  });

  it('ends a wait with the terminal event, or with nothing once the client has gone', async () => {
    const terminal: LoggedEvent = { id: '2-0', event: 'completed', data: '{}' };
    const { follower } = fakes([{ id: '1-0', event: 'token', data: '{}' }, terminal]);
    expect(await follower.end('q1', new AbortController().signal)).toEqual(terminal);
    const { follower: waiting } = fakes([{ id: '1-0', event: 'token', data: '{}' }]);
    const left = new AbortController();
    const ended = waiting.end('q1', left.signal);
    left.abort();
    expect(await ended).toBeUndefined();
  });

  it('answers a waiting request 503 at shutdown rather than hold the process', async () => {
    const { follower, streams } = fakes([{ id: '1-0', event: 'token', data: '{}' }]);
    const ended = follower.end('q1', new AbortController().signal);
    await new Promise((resolve) => setImmediate(resolve));
    streams.closeAll();
    await expect(ended).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 503 });
  });

  it('ends a stream that opens after shutdown began, with its farewell', async () => {
    const { follower, streams } = fakes();
    streams.closeAll();
    const { res, asResponse, written } = fakeResponse();
    await follower
      .open('acme', 'q1', asResponse, { farewell: () => 'data: {"error":{}}\n\n' })
      .serve(() => written.push('HEAD'));
    await vi.waitFor(() => expect(res.closed).toBe(true));
    expect(written[0]).toBe('HEAD');
    expect(written.at(-1)).toBe('data: {"error":{}}\n\n');
    expect(streams.size).toBe(0);
  });

  it('answers 503 to a wait that starts after shutdown began', async () => {
    const { follower, streams } = fakes([{ id: '1-0', event: 'token', data: '{}' }]);
    streams.closeAll();
    await expect(follower.end('q1', new AbortController().signal)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  it('ends a wait at once for a client that left before it began', async () => {
    const { follower } = fakes([{ id: '1-0', event: 'token', data: '{}' }]);
    expect(await follower.end('q1', AbortSignal.abort())).toBeUndefined();
  });
});
