import {
  createEventParser,
  EventStreamError,
  followEvents as follow,
  type StreamEvent,
} from '../../scripts/lib/event-stream.js';

/** An event as a client received it. */
export type ReceivedEvent = StreamEvent;

/** Every event type of SPEC 3. */
export const EVENT_NAMES = [
  'status',
  'stage',
  'sources',
  'token',
  'retry',
  'completed',
  'failed',
  'cancelled',
];

/**
 * Follows a question's stream with askq's event-stream client (scripts/lib/event-stream.ts, as
 * the CLI does) until a terminal event, or until `stopAfter` returns true; then closes it. Like
 * an EventSource it reconnects with Last-Event-ID for as long as the timeout allows, an API
 * restart included; a 204 (nothing after the given id) ends it with what was received.
 */
export async function followEvents(
  url: string,
  options: {
    stopAfter?: (received: ReceivedEvent[]) => boolean;
    timeoutMs?: number;
    /** Sent with every (re)connect, e.g. Authorization. */
    headers?: Record<string, string>;
  } = {},
): Promise<ReceivedEvent[]> {
  const received: ReceivedEvent[] = [];
  const timeoutMs = options.timeoutMs ?? 30_000;
  const stop = new AbortController();
  try {
    await follow({
      url,
      headers: options.headers,
      timeoutMs,
      signal: stop.signal,
      maxRetries: Infinity,
      retryDelayMs: 100,
      // askq's `retry:`, which an EventSource waits between reconnects.
      maxRetryDelayMs: 2_000,
      onEvent: (event) => {
        if (stop.signal.aborted) return;
        received.push(event);
        if (options.stopAfter?.(received)) stop.abort();
      },
    });
  } catch (e) {
    if (stop.signal.aborted) return received;
    if (e instanceof EventStreamError && e.reason === 'no-terminal') return received;
    if (e instanceof EventStreamError && e.reason === 'timeout') {
      throw new Error(
        `no terminal event within ${timeoutMs} ms: ${JSON.stringify(received.map((r) => r.event))}`,
        { cause: e },
      );
    }
    throw e;
  }
  return received;
}

/** Reads a finished stream with plain fetch: status, headers and the parsed frames. */
export async function readStream(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; events: ReceivedEvent[]; raw: string }> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  const raw = await res.text();
  return { status: res.status, headers: res.headers, events: parseFrames(raw), raw };
}

/** Parses SSE text into events (comments and `retry:` lines are skipped). */
export function parseFrames(raw: string): ReceivedEvent[] {
  const events: ReceivedEvent[] = [];
  const parser = createEventParser(({ id, event, data }) =>
    events.push({ id, event, data: JSON.parse(data) }),
  );
  parser.feed(raw);
  return events;
}
