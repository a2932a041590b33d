import { EventSource } from 'eventsource';

/** An event as a client received it. */
export interface ReceivedEvent {
  id: string;
  event: string;
  data: unknown;
}

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
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/**
 * Follows a question's stream with the `eventsource` package (a real EventSource client) until a
 * terminal event, or until `stopAfter` returns true; then closes it so it does not reconnect.
 */
export function followEvents(
  url: string,
  options: {
    stopAfter?: (received: ReceivedEvent[]) => boolean;
    timeoutMs?: number;
    /** Sent with every (re)connect, e.g. Authorization; EventSource itself has no headers option. */
    headers?: Record<string, string>;
  } = {},
): Promise<ReceivedEvent[]> {
  return new Promise((resolve, reject) => {
    const received: ReceivedEvent[] = [];
    const extra = options.headers ?? {};
    const source = new EventSource(url, {
      fetch: (input, init) =>
        fetch(input, {
          ...init,
          headers: { ...(init.headers as Record<string, string>), ...extra },
        }),
    });
    const timer = setTimeout(() => {
      source.close();
      reject(
        new Error(
          `no terminal event within ${options.timeoutMs ?? 30_000} ms: ${JSON.stringify(received.map((e) => e.event))}`,
        ),
      );
    }, options.timeoutMs ?? 30_000);
    const done = () => {
      clearTimeout(timer);
      source.close();
      resolve(received);
    };
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (message) => {
        received.push({ id: message.lastEventId, event: name, data: JSON.parse(message.data) });
        if (TERMINAL.has(name) || options.stopAfter?.(received)) done();
      });
    }
    source.addEventListener('error', (error) => {
      // A 204 or 404 ends an EventSource for good; anything else it retries by itself.
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        reject(new Error(`stream closed: ${error.message ?? 'no message'}`));
      }
    });
  });
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
  for (const block of raw.split('\n\n')) {
    let id = '';
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) events.push({ id, event, data: JSON.parse(data.join('\n')) });
  }
  return events;
}
