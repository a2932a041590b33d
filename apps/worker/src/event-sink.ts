import {
  AppError,
  TERMINAL_EVENTS,
  toError,
  type AppendOptions,
  type AskEvent,
  type EventLog,
} from '@askq/shared';

/** Writes one question's events in order, batching tokens (SPEC 6). */
export interface EventSink {
  /** Flushes pending tokens, then appends the event. Resolves false if the log refused it. */
  emit(event: AskEvent, options?: AppendOptions): Promise<boolean>;
  /**
   * Like emit, without waiting: for events the pipeline need not wait for. A failure surfaces
   * at the next emit() or flush().
   */
  send(event: AskEvent, options?: AppendOptions): void;
  /** Buffers a token; flushed after `batchMs` or at `batchMax` tokens, whichever comes first. */
  token(text: string, attempt: number): void;
  /** Appends the buffered tokens and waits for every write so far. */
  flush(): Promise<void>;
}

interface Pending {
  event: AskEvent;
  appendOptions: AppendOptions;
  resolve(landed: boolean): void;
  reject(error: unknown): void;
}

/** Options of an event sink. */
export interface EventSinkOptions {
  batchMs: number;
  batchMax: number;
  /** The attempt writing: the log refuses its events once a later attempt has written. */
  attempt: number;
  /**
   * Called once when the log refuses an append: the question already finished elsewhere, a
   * cancel was requested, or a later attempt took the question over.
   */
  onRefused: () => void;
}

/**
 * One batch of appends is in flight at a time: events that come while it is travel together in
 * the next one (one pipeline of scripts, all in the question's slot). Waiting for each reply keeps
 * the log in the order the events were made even when Redis fails over and ioredis re-sends
 * commands: commands sent at once without waiting can land reordered then. The pipeline never
 * waits for this unless it asks to (emit, flush). The first failed write fails every later call.
 */
export function createEventSink(
  log: EventLog,
  questionId: string,
  options: EventSinkOptions,
): EventSink {
  let last: Promise<unknown> = Promise.resolve();
  let failure: Error | undefined;
  let refused = false;
  let buffer: string[] = [];
  let bufferAttempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let queue: Pending[] = [];
  let sending = false;

  const fail = (e: unknown) =>
    // Redis trouble is passing: the job should be tried again, not failed for good.
    (failure ??= new AppError('UNAVAILABLE', 'could not write the event log', {
      cause: toError(e),
      retryable: true,
    }));

  const pump = () => {
    if (sending || queue.length === 0) return;
    const batch = queue;
    queue = [];
    if (failure !== undefined) {
      for (const pending of batch) pending.reject(failure);
      return;
    }
    sending = true;
    log
      .appendAll(
        questionId,
        batch.map(({ event, appendOptions }) => ({ event, options: appendOptions })),
      )
      .then(
        (ids) =>
          batch.forEach((pending, i) => {
            const landed = ids[i] !== null && ids[i] !== undefined;
            if (!landed && !refused) {
              refused = true;
              options.onRefused();
            }
            pending.resolve(landed);
          }),
        (e: unknown) => {
          const error = fail(e);
          for (const pending of batch) pending.reject(error);
        },
      )
      .finally(() => {
        sending = false;
        pump();
      });
  };

  const write = (event: AskEvent, appendOptions?: AppendOptions): Promise<boolean> => {
    if (failure !== undefined) return Promise.reject(failure);
    // After a refusal only a terminal event is still worth sending: the script decides whether
    // it lands (a requested cancel still needs its `cancelled`).
    if (refused && !TERMINAL_EVENTS.has(event.event)) return Promise.resolve(false);
    const result = new Promise<boolean>((resolve, reject) => {
      queue.push({
        event,
        appendOptions: { ...appendOptions, attempt: options.attempt },
        resolve,
        reject,
      });
    });
    // Events of the same tick go out in one batch.
    if (queue.length === 1) queueMicrotask(pump);
    last = result.catch(() => undefined);
    return result;
  };

  const drainBuffer = () => {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const text = buffer.join('');
    buffer = [];
    // Its outcome is observed by the next emit() or flush().
    write({ event: 'token', data: { text, attempt: bufferAttempt } }).catch(() => undefined);
  };

  return {
    emit(event, appendOptions) {
      drainBuffer();
      return write(event, appendOptions);
    },

    send(event, appendOptions) {
      drainBuffer();
      write(event, appendOptions).catch(() => undefined);
    },

    token(text, attempt) {
      if (buffer.length > 0 && attempt !== bufferAttempt) drainBuffer();
      bufferAttempt = attempt;
      buffer.push(text);
      if (buffer.length >= options.batchMax) drainBuffer();
      else timer ??= setTimeout(drainBuffer, options.batchMs);
    },

    async flush() {
      drainBuffer();
      await last;
      if (failure !== undefined) throw failure;
    },
  };
}
