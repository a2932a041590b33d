import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createEventParser,
  EventStreamError,
  followEvents,
  type RawEvent,
  type StreamEvent,
} from './event-stream.js';

describe('createEventParser', () => {
  const parse = (chunks: string[], lastId?: string): RawEvent[] => {
    const events: RawEvent[] = [];
    const parser = createEventParser((e) => events.push(e), lastId);
    for (const chunk of chunks) parser.feed(chunk);
    return events;
  };

  it('reads LF, CRLF and CR line ends, also when a CRLF is split across chunks', () => {
    const events = parse([
      'id: 1\nevent: a\ndata: {"n":1}\n\n',
      'id: 2\r\nevent: b\r\ndata: x\r',
      '\n\r',
      '\nid: 3\revent: c\rdata: y\r\r',
      // A CR that ends a chunk may be half a CRLF: the message goes once the next byte came.
      ': ping\n',
    ]);
    expect(events).toEqual([
      { id: '1', hasId: true, event: 'a', data: '{"n":1}' },
      { id: '2', hasId: true, event: 'b', data: 'x' },
      { id: '3', hasId: true, event: 'c', data: 'y' },
    ]);
  });

  it('joins data lines, ignores comments, retry and unknown fields, and skips empty messages', () => {
    const events = parse(
      [
        'retry: 2000\n\n',
        ': ping\n\n',
        'id: 7\nevent: token\nfoo: bar\ndata: first\ndata:second\ndata\n\n',
        'event: lonely\n\n',
        'data: no type\n\n',
      ],
      '6',
    );
    expect(events).toEqual([
      { id: '7', hasId: true, event: 'token', data: 'first\nsecond\n' },
      // The id persists across messages, as in EventSource; the event type does not.
      { id: '7', hasId: false, event: 'message', data: 'no type' },
    ]);
  });

  it('dispatches nothing for a message cut off before its blank line', () => {
    expect(parse(['event: a\ndata: 1\n\nevent: b\nda', 'ta: 2\n'])).toEqual([
      { id: '', hasId: false, event: 'a', data: '1' },
    ]);
  });
});

describe('followEvents', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
  let handler: Handler;
  let requests: IncomingMessage[] = [];
  let url: string;
  const server = createServer((req, res) => {
    requests.push(req);
    // No keep-alive: a pooled socket from an earlier test would fail a request before it arrives.
    res.setHeader('connection', 'close');
    handler(req, res, requests.length - 1);
  });

  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });
  afterEach(() => {
    requests = [];
    server.closeAllConnections();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const frame = (id: string, event: string, data: unknown) =>
    `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const log = [
    frame('1-0', 'status', { status: 'active' }),
    frame('1-1', 'token', { text: 'Hello' }),
    frame('1-2', 'token', { text: ' world' }),
    frame('1-3', 'completed', { result: { answer: 'Hello world' } }),
  ];
  /** Serves the log after the request's Last-Event-ID, as askq does. */
  const replay = (req: IncomingMessage): string[] => {
    const after = req.headers['last-event-id'] as string | undefined;
    const from = after === undefined ? 0 : log.findIndex((f) => f.startsWith(`id: ${after}\n`)) + 1;
    return log.slice(from);
  };
  const head = (res: ServerResponse) =>
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });

  const follow = (extra: Partial<Parameters<typeof followEvents>[0]> = {}) => {
    const events: StreamEvent[] = [];
    const reconnects: Array<string | undefined> = [];
    const outcome = followEvents({
      url,
      onEvent: (e) => events.push(e),
      onReconnect: ({ lastEventId }) => reconnects.push(lastEventId),
      retryDelayMs: 1,
      ...extra,
    });
    return { events, reconnects, outcome };
  };

  it('resumes a dropped connection with Last-Event-ID and passes nothing on twice', async () => {
    handler = (req, res, n) => {
      head(res);
      res.write(': ping\n\nretry: 2000\n\n');
      if (n === 0) {
        // Two events reach the client, then the connection dies mid-frame.
        res.write(log[0]! + log[1]! + 'id: 1-2\nevent: tok', () => res.socket?.destroy());
        return;
      }
      res.end(replay(req).join(''));
    };
    const { events, reconnects, outcome } = follow({ headers: { authorization: 'Bearer k' } });
    await expect(outcome).resolves.toBe('completed');
    expect(requests).toHaveLength(2);
    expect(requests[0]!.headers['last-event-id']).toBeUndefined();
    expect(requests[1]!.headers['last-event-id']).toBe('1-1');
    // Every connection carries the caller's headers, not only the first.
    expect(requests.map((r) => r.headers.authorization)).toEqual(['Bearer k', 'Bearer k']);
    expect(reconnects).toEqual(['1-1']);
    expect(events.map((e) => e.id)).toEqual(['1-0', '1-1', '1-2', '1-3']);
    expect(events[1]).toEqual({ id: '1-1', event: 'token', data: { text: 'Hello' } });
  });

  it('resumes when the body ends without a terminal event, dropping repeated ids', async () => {
    handler = (req, res, n) => {
      head(res);
      if (n === 0) res.end(log[0]! + log[1]!);
      // A server that replays the last event it sent must not make the client repeat it.
      else res.end(log[1]! + replay(req).join(''));
    };
    const { events, outcome } = follow();
    await expect(outcome).resolves.toBe('completed');
    expect(requests[1]!.headers['last-event-id']).toBe('1-1');
    expect(events.map((e) => e.id)).toEqual(['1-0', '1-1', '1-2', '1-3']);
  });

  it('retries 5xx answers and a silent connection', async () => {
    handler = (req, res, n) => {
      if (n === 0) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"UNAVAILABLE","message":"redis"}}');
      } else if (n === 1) {
        head(res);
        res.flushHeaders();
      } else {
        head(res);
        res.end(replay(req).join(''));
      }
    };
    const { events, reconnects, outcome } = follow({ idleTimeoutMs: 100 });
    await expect(outcome).resolves.toBe('completed');
    expect(reconnects).toEqual([undefined, undefined]);
    expect(events).toHaveLength(4);
  });

  it('stops at the terminal event without reading further', async () => {
    handler = (_req, res) => {
      head(res);
      // The connection stays open after `failed`: the client must not wait for its end.
      res.write(frame('2-0', 'failed', { error: { code: 'LLM_REJECTED', message: 'no' } }));
      res.write(frame('2-1', 'token', { text: 'late' }));
    };
    const { events, outcome } = follow();
    await expect(outcome).resolves.toBe('failed');
    expect(events.map((e) => e.event)).toEqual(['failed']);
  });

  it('treats 204 before any terminal event as an error', async () => {
    handler = (_req, res, n) => {
      if (n === 0) {
        head(res);
        res.end(log[0]);
      } else {
        res.writeHead(204).end();
      }
    };
    const { events, outcome } = follow();
    await expect(outcome).rejects.toMatchObject({ reason: 'no-terminal', status: 204 });
    // 204 is the end: no reconnect after it.
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers['last-event-id']).toBe('1-0');
    expect(events.map((e) => e.id)).toEqual(['1-0']);
  });

  it('fails at once on 404 and 401 with the server error', async () => {
    const answer =
      (status: number, code: string) => (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code, message: 'nope' } }));
      };
    handler = answer(404, 'NOT_FOUND');
    const missing = follow().outcome;
    await expect(missing).rejects.toBeInstanceOf(EventStreamError);
    await expect(missing).rejects.toMatchObject({ reason: 'not-found', status: 404 });
    await expect(missing).rejects.toThrow(/NOT_FOUND: nope/);
    await expect(missing).rejects.toMatchObject({
      body: { error: { code: 'NOT_FOUND', message: 'nope' } },
    });
    handler = answer(401, 'UNAUTHORIZED');
    await expect(follow().outcome).rejects.toMatchObject({ reason: 'unauthorized', status: 401 });
    handler = answer(410, 'GONE');
    const gone = follow().outcome;
    await expect(gone).rejects.toMatchObject({ reason: 'http', status: 410 });
    await expect(gone).rejects.toThrow(/answered GONE: nope/);
    // None of them is retried.
    expect(requests).toHaveLength(3);
  });

  it('refuses a 200 that is not an event stream', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"completed"}');
    };
    await expect(follow().outcome).rejects.toMatchObject({ reason: 'http', status: 200 });
    expect(requests).toHaveLength(1);
  });

  it('gives up after maxRetries failed connections in a row', async () => {
    handler = (_req, res) => res.socket?.destroy();
    const { reconnects, outcome } = follow({ maxRetries: 3 });
    await expect(outcome).rejects.toMatchObject({ reason: 'lost' });
    expect(requests).toHaveLength(4);
    expect(reconnects).toHaveLength(3);
  });

  it('stops when the caller aborts', async () => {
    const controller = new AbortController();
    handler = (_req, res) => {
      head(res);
      res.write(log[0], () => controller.abort(new Error('user left')));
    };
    const { events, outcome } = follow({ signal: controller.signal });
    await expect(outcome).rejects.toThrow('user left');
    expect(events.length).toBeLessThanOrEqual(1);
  });

  it('stops waiting for a reconnect when the caller aborts', async () => {
    const controller = new AbortController();
    handler = (_req, res) => res.socket?.destroy();
    const { outcome } = follow({
      signal: controller.signal,
      retryDelayMs: 60_000,
      onReconnect: () => controller.abort(new Error('user left')),
    });
    await expect(outcome).rejects.toThrow('user left');
    expect(requests).toHaveLength(1);
  });

  it('gives up with a timeout error after timeoutMs, however the stream goes', async () => {
    handler = (_req, res) => {
      head(res);
      res.write(log[0]);
    };
    const started = performance.now();
    const { events, outcome } = follow({ timeoutMs: 200 });
    await expect(outcome).rejects.toMatchObject({ reason: 'timeout' });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(events.map((e) => e.event)).toEqual(['status']);
  });
});
