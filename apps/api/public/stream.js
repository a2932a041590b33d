// Server-Sent Events over fetch, resumed with Last-Event-ID.
// EventSource cannot send request headers, and askq's API key goes in Authorization, so the page
// reads the stream itself. Self-contained on purpose (no imports, no DOM): it knows the SSE
// grammar and how to reconnect, and reports events and connection states to its caller.

/** Consecutive failed connections before giving up on a stream. */
export const MAX_RECONNECTS = 30;

/**
 * One event as the stream delivered it; data is not parsed here.
 * @typedef {{ id: string | undefined, event: string, data: string }} StreamEvent
 */

/**
 * How following a stream ended: `stopped` when the caller is done with it or aborted it, `ended`
 * on a 204 (finished, and nothing after the last event seen), `refused` on a 4xx (the response is
 * left unread for the caller), `unreachable` after too many failed connections in a row.
 * @typedef {{ outcome: 'stopped' }
 *   | { outcome: 'ended' }
 *   | { outcome: 'refused', response: Response }
 *   | { outcome: 'unreachable', tries: number }} FollowResult
 */

/** @type {FollowResult} */
const STOPPED = { outcome: 'stopped' };

/**
 * Reads an event stream body and calls onEvent for each complete event (the SSE grammar: fields
 * id, event, data, retry; comments start with ':'; events end at a blank line). Resolves when the
 * body ends, rejects when the connection breaks.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(event: StreamEvent) => void} onEvent
 * @param {(ms: number) => void} onRetry the server's `retry:` field
 * @param {AbortSignal} signal
 */
export async function readEventStream(body, onEvent, onRetry, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', stop, { once: true });
  let buffer = '';
  /** @type {string | undefined} */
  let id;
  let event = '';
  /** @type {string[]} */
  let data = [];
  /** @param {string} text */
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent({ id, event: event || 'message', data: data.join('\n') });
      id = undefined;
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer[i];
        if (ch !== '\n' && ch !== '\r') continue;
        // A CR at the very end may be the first half of CRLF: wait for the next chunk.
        if (ch === '\r' && i === buffer.length - 1) break;
        line(buffer.slice(start, i));
        if (ch === '\r' && buffer[i + 1] === '\n') i++;
        start = i + 1;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Waits, or less if the signal aborts first (resolving, not rejecting: an abort is not an error).
 * @param {number} ms
 * @param {AbortSignal} signal
 */
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve(undefined)), {
      once: true,
    });
  });

/**
 * Follows an event stream until the caller is done with it. After a network error, a 5xx or 429,
 * or a stream that ends early it reconnects after a short backoff, sending the id of the last event
 * seen as Last-Event-ID, so the server resumes after it and nothing is lost or repeated.
 * @param {object} options
 * @param {string} options.url
 * @param {() => Record<string, string>} options.headers extra request headers (Authorization),
 *   read for every connection since they may change meanwhile
 * @param {AbortSignal} options.signal stops following, a wait between tries included
 * @param {() => boolean} options.isDone true once the caller has had the event it waited for;
 *   events after it are dropped
 * @param {(event: StreamEvent) => void} options.onEvent
 * @param {(state: string, resumes: number) => void} options.onConnection the connection's state
 *   in words, and how many times the stream was resumed so far
 * @param {number} [options.retryMs] the longest wait between tries until the server says otherwise
 * @param {number} [options.maxReconnects]
 * @returns {Promise<FollowResult>}
 */
export async function followEventStream(options) {
  const { url, signal, isDone, onEvent, onConnection } = options;
  const maxReconnects = options.maxReconnects ?? MAX_RECONNECTS;
  let retryMs = options.retryMs ?? 2000;
  /** @type {string | undefined} */
  let lastEventId;
  let resumes = 0;
  let failures = 0;
  while (!isDone() && !signal.aborted) {
    if (failures > 0) {
      if (failures > maxReconnects) return { outcome: 'unreachable', tries: maxReconnects };
      const wait = Math.min(250 * 2 ** (failures - 1), retryMs);
      onConnection(`lost — reconnecting in ${wait} ms (try ${failures})`, resumes);
      await sleep(wait, signal);
      if (signal.aborted) return STOPPED;
    }
    /** @type {Record<string, string>} */
    const requestHeaders = { accept: 'text/event-stream', ...options.headers() };
    if (lastEventId) requestHeaders['last-event-id'] = lastEventId;
    let res;
    try {
      res = await fetch(url, { headers: requestHeaders, cache: 'no-store', signal });
    } catch {
      if (signal.aborted) return STOPPED;
      failures++;
      continue;
    }
    if (res.status === 204) return { outcome: 'ended' };
    if (!res.ok || !res.body) {
      if (res.status >= 500 || res.status === 429) {
        // Not worth reading; releasing the body frees the connection for the next try.
        await res.body?.cancel().catch(() => {});
        failures++;
        continue;
      }
      return { outcome: 'refused', response: res };
    }
    if (lastEventId) resumes++;
    onConnection('streaming', resumes);
    try {
      await readEventStream(
        res.body,
        (event) => {
          failures = 0;
          // A chunk can hold more events after the one that ended it for the caller.
          if (isDone()) return;
          if (event.id) {
            lastEventId = event.id;
            onConnection('streaming', resumes);
          }
          onEvent(event);
        },
        (ms) => (retryMs = Math.max(250, Math.min(ms, 5000))),
        signal,
      );
    } catch {
      // The connection broke mid-stream; resume below.
    }
    if (isDone() || signal.aborted) return STOPPED;
    failures++;
  }
  return STOPPED;
}
