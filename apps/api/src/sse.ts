import type { Response } from 'express';
import type { LoggedEvent } from '@askq/shared';

const LINE_BREAK = /[\r\n]/;

/**
 * Formats one SSE frame. `id` and `event` must not hold CR or LF (that would let a value start a
 * forged frame); data is split into one `data:` line per line, as the SSE grammar requires.
 */
export function formatSseFrame(event: LoggedEvent): string {
  if (LINE_BREAK.test(event.id) || LINE_BREAK.test(event.event)) {
    throw new Error('SSE id and event must not contain line breaks');
  }
  // JSON from JSON.stringify has no raw line breaks: one data line, the common case.
  const data = LINE_BREAK.test(event.data)
    ? event.data
        .split(/\r\n|\r|\n/)
        .map((line) => `data: ${line}\n`)
        .join('')
    : `data: ${event.data}\n`;
  return `id: ${event.id}\nevent: ${event.event}\n${data}\n`;
}

// A live event reaches every stream of its question as the same object: it is formatted and
// encoded once, and the same bytes are written to every client.
const frames = new WeakMap<LoggedEvent, Buffer>();

/** The encoded frame of an event, built once per event object. */
export function sseFrameBytes(event: LoggedEvent): Buffer {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = Buffer.from(formatSseFrame(event));
    frames.set(event, frame);
  }
  return frame;
}

/**
 * Headers of an event stream (SPEC 3); `no-transform` keeps compressing proxies from buffering.
 * `retryMs` is sent as `retry:` for EventSource clients (OpenAI-shaped streams have none).
 */
export function writeSseHead(res: Response, retryMs?: number): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  if (retryMs !== undefined) res.write(`retry: ${retryMs}\n\n`);
}

/** The open event streams of this process, so shutdown can end them (clients resume elsewhere). */
export interface SseRegistry {
  /** `farewell`: what the stream says when shutdown ends it (see follow.ts). */
  add(res: Response, farewell?: () => string): void;
  /** Whether it was registered. */
  delete(res: Response): boolean;
  readonly size: number;
  /**
   * Registers a request that waits for a question's end without streaming (an unstreamed chat
   * completion): shutdown calls `leave` so it answers at once rather than hold the server open.
   * Returns its removal.
   */
  addWaiter(leave: () => void): () => void;
  /**
   * Ends every stream and waiter, and from then on each one registered: a request already past
   * the shutdown gate may open its stream after this ran, and must not hold the server open.
   */
  closeAll(): void;
}

/** Creates an empty stream registry. */
export function createSseRegistry(): SseRegistry {
  const open = new Map<Response, (() => string) | undefined>();
  const waiters = new Set<() => void>();
  let closed = false;
  return {
    add(res, farewell) {
      open.set(res, farewell);
      // Ended once its caller has written its head (it registers just before).
      if (closed) queueMicrotask(() => res.end(farewell?.()));
    },
    delete: (res) => open.delete(res),
    get size() {
      return open.size;
    },
    addWaiter(leave) {
      if (closed) {
        // Once its caller is waiting, so that it hears it.
        queueMicrotask(leave);
        return () => undefined;
      }
      waiters.add(leave);
      return () => void waiters.delete(leave);
    },
    closeAll() {
      closed = true;
      // Each stream's 'close' handler unregisters it (and updates the gauge).
      for (const [res, farewell] of [...open]) res.end(farewell?.());
      for (const leave of [...waiters]) leave();
      waiters.clear();
    },
  };
}
