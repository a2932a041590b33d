// askq's one Server-Sent Events client for Node: the CLI, `askq eval`, the tests and the benches
// read question streams (SPEC 3) with it. The wire format is read by eventsource-parser, the
// parser inside the `eventsource` package; around it sits what EventSource does not do for
// askq's clients: headers on every (re)connect (Authorization), a 5xx/429 or a silent connection
// resumed with Last-Event-ID like a dropped one, a bounded number of reconnects, HTTP errors with
// their status and askq's error body, a timeout. Reads no env and never exits: callers do that.
import { setTimeout as sleep } from 'node:timers/promises';
import { createParser } from 'eventsource-parser';
import { deadline, toError } from '@askq/shared';
import { apiErrorOf, networkReason } from './http.js';

/** One event of the stream; `data` is parsed JSON (askq's events), or the raw text otherwise. */
export interface StreamEvent {
  id: string;
  event: string;
  data: unknown;
}

/** An event as the parser reads it, `data` still text. */
export interface RawEvent {
  /** The last id seen on the stream, like EventSource's `lastEventId` ('' before any). */
  id: string;
  /** Whether this event carried an `id:` of its own. */
  hasId: boolean;
  event: string;
  data: string;
}

/** How a question's stream ended: its terminal event. */
export type StreamOutcome = 'completed' | 'failed' | 'cancelled';

/** The events after which askq ends a question's stream. */
export const TERMINAL_EVENTS: ReadonlySet<string> = new Set<StreamOutcome>([
  'completed',
  'failed',
  'cancelled',
]);

const isTerminal = (event: string): event is StreamOutcome => TERMINAL_EVENTS.has(event);

/**
 * An incremental reader of the SSE wire format (WHATWG HTML, "event stream interpretation"), for
 * any transport: feed it text as it arrives. Comments and `retry:` are skipped; `lastId` is the
 * id a resumed stream starts from.
 */
export function createEventParser(
  onEvent: (event: RawEvent) => void,
  lastId = '',
): { feed(text: string): void } {
  const parser = createParser({
    onEvent: (message) => {
      if (message.id !== undefined) lastId = message.id;
      onEvent({
        id: lastId,
        hasId: message.id !== undefined,
        event: message.event || 'message',
        data: message.data,
      });
    },
  });
  return { feed: (text) => parser.feed(text) };
}

/** Options of `followEvents()`. */
export interface FollowOptions {
  url: string;
  /** Sent with every (re)connect, e.g. Authorization. */
  headers?: Record<string, string>;
  /** Each event once, in order; a throw ends following with that error. */
  onEvent: (event: StreamEvent) => void;
  /** Called before each reconnect, after the backoff has been chosen. */
  onReconnect?: (info: { attempt: number; lastEventId: string | undefined; error: Error }) => void;
  fetch?: typeof fetch;
  /** Reconnects in a row without receiving an event before giving up (default 5). */
  maxRetries?: number;
  /** First backoff in milliseconds (default 250); doubles with each failed reconnect in a row. */
  retryDelayMs?: number;
  /** The longest backoff (default: no bound). */
  maxRetryDelayMs?: number;
  /** Milliseconds without a byte (askq pings every 15 s) after which the connection counts as lost. */
  idleTimeoutMs?: number;
  /** Gives up after this long in all (an AbortSignal.timeout): EventStreamError 'timeout'. */
  timeoutMs?: number;
  /** Aborting stops following: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Following cannot go on: the question is unknown, the key is refused, or the stream is lost. */
export class EventStreamError extends Error {
  constructor(
    readonly reason: 'not-found' | 'unauthorized' | 'http' | 'lost' | 'no-terminal' | 'timeout',
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

/**
 * Follows an event stream until a terminal event (`completed`, `failed`, `cancelled`) and returns
 * its name. A dropped connection (a network error, silence past `idleTimeoutMs`, a 5xx/429, or the
 * body ending before a terminal event) is resumed with `Last-Event-ID` after a backoff; an event
 * id already seen is never passed on twice. 204 ends the stream: the server has nothing more, so
 * without a terminal event first it is EventStreamError 'no-terminal'.
 */
export async function followEvents(options: FollowOptions): Promise<StreamOutcome> {
  const limit =
    options.timeoutMs === undefined ? undefined : deadline(options.timeoutMs, options.signal);
  try {
    return await follow(options, limit?.signal ?? options.signal);
  } catch (e) {
    options.signal?.throwIfAborted();
    if (limit?.timedOut) {
      throw new EventStreamError(
        'timeout',
        `no terminal event from ${options.url} within ${options.timeoutMs} ms`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    limit?.clear();
  }
}

async function follow(options: FollowOptions, signal: AbortSignal | undefined) {
  const { url, onEvent } = options;
  const { maxRetries = 5, retryDelayMs = 250, idleTimeoutMs = 45_000 } = options;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? Infinity;
  const doFetch = options.fetch ?? fetch;
  let lastEventId: string | undefined;
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
        throw new EventStreamError(
          'no-terminal',
          `${url} has no more events (204) but no terminal event was seen`,
          { status: 204 },
        );
      }
      if (response.status !== 200 || !response.body) {
        problem = await httpProblem(url, response);
      } else {
        const type = response.headers.get('content-type') ?? '';
        if (!type.startsWith('text/event-stream')) {
          await response.body.cancel().catch(() => undefined);
          throw new EventStreamError(
            'http',
            `${url} answered ${type || 'no content type'}, not an event stream`,
            { status: 200 },
          );
        }
        let outcome: StreamOutcome | undefined;
        const parser = createEventParser((message) => {
          if (outcome || callbackError) return;
          if (message.hasId) {
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
          if (isTerminal(message.event)) outcome = message.event;
        }, lastEventId);
        const decoder = new TextDecoder();
        // undici types the body as ReadableStream<any>; fetch bodies are bytes.
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            resetIdle();
            parser.feed(decoder.decode(value, { stream: true }));
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
    const delay = Math.min(retryDelayMs * 2 ** (failures - 1), maxRetryDelayMs);
    await sleep(delay, undefined, { signal });
  }
}

/** A 5xx or 429 is a passing fault to retry; 404, 401/403 and other statuses end following. */
async function httpProblem(url: string, response: Response): Promise<Error> {
  const text = await response.text().catch(() => '');
  const body = parseData(text);
  const status = response.status;
  if (status >= 500 || status === 429) return new Error(`HTTP ${status}`);
  const error = apiErrorOf(body);
  const detail = error ? `${error.code}: ${error.message}` : `HTTP ${status}`;
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

/** JSON when the text is JSON, the text itself otherwise. */
function parseData(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
