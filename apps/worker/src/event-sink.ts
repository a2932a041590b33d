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

/** Options of an event sink. */
export interface EventSinkOptions {
  batchMs: number;
  batchMax: number;
  /** Called once when the log refuses an append: the question already finished elsewhere. */
  onRefused: () => void;
}

/**
 * Appends are sent at once, without waiting for the previous reply: they travel over one Redis
 * connection, which applies them in the order sent, so events keep their order while the
 * pipeline never waits a round trip per event. (ioredis sends a script's full EVAL first on every
 * new socket; only a SCRIPT FLUSH under a live connection makes it re-send one behind later
 * commands, and clients then see one event out of order.) The first failed write fails every
 * later call.
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

  const write = (event: AskEvent, appendOptions?: AppendOptions): Promise<boolean> => {
    if (failure !== undefined) return Promise.reject(failure);
    // After a refusal only a terminal event is still worth sending: the script decides whether
    // it lands (a requested cancel still needs its `cancelled`).
    if (refused && !TERMINAL_EVENTS.has(event.event)) return Promise.resolve(false);
    const result = log.append(questionId, event, appendOptions).then(
      (id) => {
        if (id === null && !refused) {
          refused = true;
          options.onRefused();
        }
        return id !== null;
      },
      (e: unknown) => {
        // Redis trouble is passing: the job should be tried again, not failed for good.
        failure ??= new AppError('UNAVAILABLE', 'could not write the event log', {
          cause: toError(e),
          retryable: true,
        });
        throw failure;
      },
    );
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
