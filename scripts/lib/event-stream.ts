// A Server-Sent Events client for askq's question streams (SPEC 3), over fetch so it can send
// Authorization (EventSource cannot), that resumes with Last-Event-ID after a dropped connection.
// Reads no env and never exits: the CLI does that.
import { setTimeout as sleep } from 'node:timers/promises';
import { toError } from '@askq/shared';

/** One dispatched SSE event; `data` is parsed JSON, or the raw text when it is not JSON. */
export interface StreamEvent {
  id: string;
  event: string;
  data: unknown;
}

/** How a question's stream ended. */
export type StreamOutcome = 'completed' | 'failed' | 'cancelled';

/** Options of `followEvents()`. */
export interface FollowOptions {
  url: string;
  /** Sent with every (re)connect, e.g. Authorization. */
  headers?: Record<string, string>;
  onEvent: (event: StreamEvent) => void;
  /** Called before each reconnect, after the backoff has been chosen. */
  onReconnect?: (info: { attempt: number; lastEventId: string | undefined; error: Error }) => void;
  fetch?: typeof fetch;
  /** Reconnects in a row without receiving an event before giving up. */
  maxRetries?: number;
  /** First backoff in milliseconds; doubles with each failed reconnect in a row. */
  retryDelayMs?: number;
  /** Milliseconds without a byte (askq pings every 15 s) after which the connection counts as lost. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

/** Following cannot go on: the question is unknown, the key is refused, or the stream is lost. */
export class EventStreamError extends Error {
  constructor(
    readonly reason: 'not-found' | 'unauthorized' | 'http' | 'lost' | 'no-terminal',
    message: string,
    options?: { cause?: unknown; status?: number; body?: unknown },
  ) {
    super(message, options);
    this.name = 'EventStreamError';
    this.status = options?.status;
    this.body = options?.body;
  }
  readonly status: number | undefined;
  /** The response body (parsed JSON when it was JSON) of an HTTP error. */
  readonly body: unknown;
}

const TERMINAL = new Set<string>(['completed', 'failed', 'cancelled']);

/** An SSE message as the parser sees it, before `data` is parsed. */
export interface SseMessage {
  /** The last `id:` seen on this connection ('' when none). */
  id: string;
  event: string;
  data: string;
}

/**
 * An incremental parser of the SSE wire format (WHATWG HTML, "event stream interpretation"): lines
 * end in CRLF, LF or CR, `data:` lines join with LF, comments and `retry:` are ignored, and a
 * message without data is not dispatched.
 */
export function createSseParser(onMessage: (message: SseMessage) => void): {
  push(text: string): void;
} {
  let rest = '';
  // A CR that ended the previous chunk may be the first half of a CRLF split across chunks.
  let skipLeadingLf = false;
  let lastId = '';
  let type = '';
  let data: string[] = [];

  const line = (text: string) => {
    if (text === '') {
      if (data.length > 0)
        onMessage({ id: lastId, event: type || 'message', data: data.join('\n') });
      type = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  };

  return {
    push(text) {
      if (skipLeadingLf && text.length > 0) {
        if (text.startsWith('\n')) text = text.slice(1);
        skipLeadingLf = false;
      }
      const buffer = rest + text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        line(buffer.slice(start, i));
        if (c === 13) {
          if (i + 1 === buffer.length) skipLeadingLf = true;
          else if (buffer.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      rest = buffer.slice(start);
    },
  };
}

/**
 * Follows an event stream until a terminal event (`completed`, `failed`, `cancelled`) and returns
 * its name. A dropped connection (a network error, silence past `idleTimeoutMs`, a 5xx/429, or the
 * body ending before a terminal event) is resumed with `Last-Event-ID` after a backoff; an event
 * id already seen is never passed on twice. 204 means the stream has nothing more to send.
 */
export async function followEvents(options: FollowOptions): Promise<StreamOutcome> {
  const { url, onEvent, signal } = options;
  const { maxRetries = 5, retryDelayMs = 250, idleTimeoutMs = 45_000 } = options;
  const doFetch = options.fetch ?? fetch;
  let lastEventId: string | undefined;
  let outcome: StreamOutcome | undefined;
  const seen = new Set<string>();
  let failures = 0;

  for (;;) {
    signal?.throwIfAborted();
    const connection = new AbortController();
    const connectionSignal = signal
      ? AbortSignal.any([signal, connection.signal])
      : connection.signal;
    let idle: NodeJS.Timeout | undefined;
    const resetIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(
        () => connection.abort(new Error(`no data for ${idleTimeoutMs} ms`)),
        idleTimeoutMs,
      );
    };
    let received = false;
    let callbackError: Error | undefined;
    let problem: Error;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      resetIdle();
      const response = await doFetch(url, { headers, signal: connectionSignal });
      if (response.status === 204) {
        if (outcome) return outcome;
        throw new EventStreamError(
          'no-terminal',
          `${url} has no more events (204) but no terminal event was seen`,
          { status: 204 },
        );
      }
      if (response.status !== 200 || !response.body) {
        problem = await httpProblem(url, response);
      } else {
        const parser = createSseParser((message) => {
          if (outcome || callbackError) return;
          if (message.id !== '') {
            if (seen.has(message.id)) return;
            seen.add(message.id);
            lastEventId = message.id;
          }
          received = true;
          try {
            onEvent({ id: message.id, event: message.event, data: parseData(message.data) });
          } catch (e) {
            callbackError = toError(e);
          }
          if (TERMINAL.has(message.event)) outcome = message.event as StreamOutcome;
        });
        const decoder = new TextDecoder();
        // undici types the body as ReadableStream<any>; fetch bodies are bytes.
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            resetIdle();
            parser.push(decoder.decode(value, { stream: true }));
            if (outcome || callbackError) break;
          }
        } finally {
          // Releases the socket whether the stream ended, broke or was left early.
          await reader.cancel().catch(() => undefined);
        }
        if (callbackError) throw callbackError;
        if (outcome) return outcome;
        problem = new Error('the stream ended before a terminal event');
      }
    } catch (e) {
      if (e instanceof EventStreamError || e === callbackError) throw e;
      signal?.throwIfAborted();
      problem = toError(connection.signal.aborted ? connection.signal.reason : e);
    } finally {
      clearTimeout(idle);
    }

    // Only failures in a row count: a long answer may survive several drops.
    if (received) failures = 0;
    if (++failures > maxRetries) {
      throw new EventStreamError(
        'lost',
        `lost the event stream ${url} ${failures} times in a row: ${networkReason(problem)}`,
        { cause: problem },
      );
    }
    options.onReconnect?.({ attempt: failures, lastEventId, error: problem });
    await sleep(retryDelayMs * 2 ** (failures - 1), undefined, { signal });
  }
}

/** A 5xx or 429 is a passing fault to retry; 404, 401/403 and other statuses end following. */
async function httpProblem(url: string, response: Response): Promise<Error> {
  const text = await response.text().catch(() => '');
  const body = parseData(text);
  const status = response.status;
  if (status >= 500 || status === 429) return new Error(`HTTP ${status}`);
  const detail = describeError(body) ?? `HTTP ${status}`;
  if (status === 404) {
    throw new EventStreamError('not-found', `no such question: ${detail}`, { status, body });
  }
  if (status === 401 || status === 403) {
    throw new EventStreamError('unauthorized', `the API key was refused: ${detail}`, {
      status,
      body,
    });
  }
  throw new EventStreamError('http', `${url} answered ${detail}`, { status, body });
}

/** `CODE: message` of askq's error body, if that is what `body` is. */
function describeError(body: unknown): string | undefined {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (typeof error?.code !== 'string') return undefined;
  return `${error.code}: ${typeof error.message === 'string' ? error.message : ''}`;
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** fetch() hides the socket error (ECONNREFUSED, ECONNRESET) in `cause`. */
function networkReason(err: Error): string {
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return `${err.message} (${cause.code})`;
  return err.message;
}
