import {
  compareEventIds,
  LOG_PAGE_SIZE,
  TERMINAL_EVENTS,
  toError,
  type EventLog,
  type LoggedEvent,
  type Logger,
} from '@askq/shared';
import type { EventHub } from './event-hub.js';
import { sseFrameBytes } from './sse.js';

/** Where a stream writes: an HTTP response, or a fake in tests. */
export interface StreamOutput {
  /** Writes bytes; false when they were buffered (the client reads slower than we write). */
  write(chunk: Buffer | string): boolean;
  /** Bytes written and not yet taken by the client. */
  readonly writableLength: number;
  /** end() was called (by this stream, or by shutdown): a write now would throw. */
  readonly writableEnded: boolean;
  /** A write returned false: 'drain' will come once the client has taken what is buffered. */
  readonly writableNeedDrain: boolean;
  /** Ends the response after what was written. */
  end(): void;
  /** Drops the connection (the client resumes from its Last-Event-ID). */
  destroy(): void;
  /** 'drain': what was buffered was taken; 'close': the connection is gone. */
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Resolves true once the client has taken what was written to it (below the high-water mark) or
 * has gone, false when it has not within `timeoutMs`: a client that keeps its connection open
 * and reads nothing must not hold a stream (and its lease) forever.
 */
export function drained(output: StreamOutput, timeoutMs: number): Promise<boolean> {
  if (!output.writableNeedDrain) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (taken: boolean) => () => {
      clearTimeout(timer);
      output.off('drain', onDrain);
      output.off('close', onDrain);
      resolve(taken);
    };
    const onDrain = done(true);
    const timer = setTimeout(done(false), timeoutMs);
    timer.unref();
    output.once('drain', onDrain);
    output.once('close', onDrain);
  });
}

/**
 * The states of a live stream:
 * - `subscribing`: the subscription is being confirmed; live events wait in `pending`;
 * - `replaying`: the log is being read from the last event sent; live events wait in `pending`;
 * - `live`: live events are written as they come;
 * - `closed`: after a terminal event, a dropped client, or an unrecoverable read: nothing more.
 * A gap in live events (pub/sub is best effort), a hub that resynced, or a heartbeat with
 * nothing sent takes `live` back to `replaying`.
 */
export type LiveStreamState = 'subscribing' | 'replaying' | 'live' | 'closed';

/** A question's live stream. */
export interface LiveStream {
  readonly state: LiveStreamState;
  /** Serves: waits for the subscription, writes the head, replays, then goes live. */
  serve(writeHead: () => void): Promise<void>;
  /** Drops a subscription never served (the question finished, or the request was refused). */
  cancel(): void;
  /** Ends it from outside (the client left). */
  close(): void;
}

/** Options of {@link createLiveStream}. */
export interface LiveStreamOptions {
  questionId: string;
  /** The last event the client has; the stream starts after it. */
  after: string | undefined;
  output: StreamOutput;
  hub: EventHub;
  events: EventLog;
  log: Logger;
  heartbeatMs: number;
  /** Unsent bytes after which a slow client is dropped. */
  maxBufferBytes: number;
  /** Events read from the log at once while replaying (default LOG_PAGE_SIZE). */
  pageSize?: number;
  /**
   * What the client receives for each event: askq's own SSE frame by default; an OpenAI-shaped
   * stream translates instead, and may send nothing for an event ('').
   */
  format?: (event: LoggedEvent) => Buffer | string;
  /** Written before the end of a stream cut short by an unreadable log (none by default). */
  farewell?: () => string;
  /** Called once the subscription is confirmed, just before the head is written. */
  onOpen?: () => void;
  /** Called with how many events each write carried. */
  onSent?: (count: number) => void;
  /** Called once when the stream closes (whether or not it opened). */
  onClose?: () => void;
}

/**
 * Subscribes before replaying, so nothing published in between is lost, and drops every id at or
 * before the last one sent, so nothing is repeated. The subscription starts at once (while the
 * caller reads the question's record); `serve` streams, `cancel` drops it unused.
 */
export function createLiveStream(options: LiveStreamOptions): LiveStream {
  const { questionId: id, output, log } = options;
  const format = options.format ?? sseFrameBytes;
  const pageSize = options.pageSize ?? LOG_PAGE_SIZE;
  let state: LiveStreamState = 'subscribing';
  let lastSent = options.after;
  let pending: LoggedEvent[] = [];
  // Whether anything was written since the last heartbeat.
  let quiet = true;
  let heartbeat: NodeJS.Timeout | undefined;
  // Set below, once the hub was asked: closing at any point lets go of the subscription.
  let subscribed: Promise<() => void> = Promise.resolve(() => {});

  let closedNow: () => void = () => {};
  const whenClosed = new Promise<void>((resolve) => (closedNow = resolve));
  const close = () => {
    if (state === 'closed') return;
    state = 'closed';
    closedNow();
    clearInterval(heartbeat);
    void subscribed.then(
      (release) => release(),
      () => undefined,
    );
    options.onClose?.();
  };

  /**
   * Whether the response was ended from outside (shutdown ends every stream), closing the stream
   * if so: checked before every write, since a write after end throws in the process.
   */
  const endedElsewhere = (): boolean => {
    if (!output.writableEnded) return false;
    close();
    return true;
  };

  /**
   * Writes the events not sent yet, in one write; closes after a terminal event. A live event
   * whose predecessor is not the last one sent means pub/sub lost one: then the log is read
   * from there instead (resolves true when that happened).
   */
  const deliver = (batch: LoggedEvent[], live: boolean): boolean => {
    const frames: Array<Buffer | string> = [];
    let terminal = false;
    let gap = false;
    let taken = 0;
    for (const event of batch) {
      if (lastSent !== undefined && compareEventIds(event.id, lastSent) <= 0) continue;
      if (live && event.prev !== lastSent) {
        gap = true;
        break;
      }
      lastSent = event.id;
      taken++;
      const frame = format(event);
      if (frame.length > 0) frames.push(frame);
      if (TERMINAL_EVENTS.has(event.event)) {
        terminal = true;
        break;
      }
    }
    // Events that were received count as activity even when they produced no bytes.
    if (taken > 0) quiet = false;
    if (endedElsewhere()) return false;
    let flushed = true;
    if (frames.length > 0) {
      flushed = output.write(
        frames.length === 1
          ? frames[0]!
          : Buffer.concat(frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))),
      );
      options.onSent?.(frames.length);
    }
    if (terminal) {
      close();
      output.end();
      return false;
    }
    if (frames.length > 0) {
      if (!flushed && output.writableLength > options.maxBufferBytes) {
        // A client that cannot keep up is dropped; it resumes from its Last-Event-ID.
        log.warn({ questionId: id, buffered: output.writableLength }, 'dropping slow SSE client');
        close();
        output.destroy();
        return false;
      }
    }
    return gap;
  };

  /**
   * replaying: reads the log after the last event sent, a page at a time, each written once the
   * client has taken the one before (a client that does not read holds one page, not the log),
   * then hands over to live.
   */
  const replay = async (): Promise<void> => {
    if (state === 'closed' || state === 'replaying') return;
    state = 'replaying';
    for (;;) {
      let page: LoggedEvent[];
      try {
        page = await options.events.read(id, lastSent, pageSize);
      } catch (e) {
        log.warn({ err: toError(e), questionId: id }, 'event log read failed; ending stream');
        if (endedElsewhere()) return;
        close();
        const farewell = options.farewell?.();
        if (farewell) output.write(farewell);
        output.end();
        return;
      }
      if (state !== 'replaying') return;
      deliver(page, false);
      if (state !== 'replaying') return;
      if (page.length < pageSize) break;
      // Two heartbeats without taking a page: the client is gone in all but name.
      if (!(await drained(output, options.heartbeatMs * 2))) {
        log.warn({ questionId: id }, 'dropping an SSE client that stopped reading');
        close();
        output.destroy();
        return;
      }
      if (state !== 'replaying') return;
    }
    state = 'live';
    const queued = pending;
    pending = [];
    if (deliver(queued, true)) await replay();
  };

  subscribed = options.hub.subscribe(id, {
    onEvents: (events) => {
      if (state === 'live') {
        if (deliver(events, true)) void replay();
      } else if (state !== 'closed') {
        pending.push(...events);
      }
    },
    // Before serve nothing was read yet: its first read covers whatever was missed.
    onResync: () => {
      if (state === 'live') void replay();
    },
  });
  // Awaited by serve, or dropped by cancel; never unhandled in between.
  subscribed.catch(() => undefined);

  return {
    get state() {
      return state;
    },

    async serve(writeHead) {
      // A subscription can wait as long as Redis is away; a stream closed meanwhile (its client
      // left, shutdown) stops waiting, and the subscription is let go whenever it comes.
      await Promise.race([subscribed, whenClosed]);
      if (state === 'closed') return;
      // Pub/sub is best effort (a message published while the subscriber moves to another
      // cluster node is gone). The next event reveals a lost one; a lost last event has no next,
      // so a stream that stayed quiet for a whole heartbeat also re-reads the log.
      heartbeat = setInterval(() => {
        if (endedElsewhere()) return;
        output.write(': ping\n\n');
        if (quiet && state === 'live') void replay();
        quiet = true;
      }, options.heartbeatMs);
      heartbeat.unref();
      options.onOpen?.();
      writeHead();
      await replay();
    },

    cancel: close,

    close,
  };
}
