import type { AppendOptions, AskEvent, EventLog, LoggedEvent } from '@askq/shared';
import { AppError } from '@askq/shared';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEventSink, type EventSinkOptions } from './event-sink.js';

interface AppendCall {
  /** Date.now() when append was called (fake time in the timer tests). */
  at: number;
  questionId: string;
  event: AskEvent;
  options: AppendOptions | undefined;
}

type Reply = string | null | Error;

/**
 * An in-memory EventLog that records appends. `reply` decides each event's outcome (an id, a
 * refusal, or a thrown error, which fails its whole batch); `delayMs` gives each batch an async
 * latency (by its first event's number) so overlapping batches would show up as `maxActive > 1`.
 */
function fakeLog(opts: { reply?: (n: number) => Reply; delayMs?: (n: number) => number } = {}) {
  const calls: AppendCall[] = [];
  const batches: number[] = [];
  let active = 0;
  let maxActive = 0;
  const log: EventLog = {
    append() {
      return Promise.reject(new Error('the sink appends in batches'));
    },
    async appendAll(questionId, entries) {
      const first = calls.length;
      batches.push(entries.length);
      for (const { event, options } of entries) {
        calls.push({ at: Date.now(), questionId, event, options });
      }
      active += 1;
      maxActive = Math.max(maxActive, active);
      try {
        const delay = opts.delayMs?.(first) ?? 0;
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        return entries.map((_, i) => {
          const n = first + i;
          const reply = opts.reply ? opts.reply(n) : `${n + 1}-0`;
          if (reply instanceof Error) throw reply;
          return reply;
        });
      } finally {
        active -= 1;
      }
    },
    read(): Promise<LoggedEvent[]> {
      return Promise.resolve([]);
    },
  };
  return {
    log,
    calls,
    batches,
    events: () => calls.map((c) => c.event),
    get maxActive() {
      return maxActive;
    },
  };
}

function sinkOptions(over: Partial<EventSinkOptions> = {}): EventSinkOptions {
  return { batchMs: 50, batchMax: 3, onRefused: vi.fn(), ...over, attempt: over.attempt ?? 1 };
}

// In the fake-timer tests, `advanceTimersByTimeAsync(0)` lets the queued append run without
// moving the clock (vi.waitFor would advance fake time by its polling interval).
const status = (attempt = 1): AskEvent => ({
  event: 'status',
  data: { status: 'active', attempt },
});

afterEach(() => {
  vi.useRealTimers();
});

describe('createEventSink', () => {
  it('appends an emitted event with its options and its attempt, and resolves true', async () => {
    const fake = fakeLog();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ attempt: 2 }));
    const options = { set: { status: 'active', attempts: 2 } };
    await expect(sink.emit(status(2), options)).resolves.toBe(true);
    expect(fake.calls).toEqual([
      {
        at: expect.any(Number),
        questionId: 'q1',
        event: status(2),
        options: { ...options, attempt: 2 },
      },
    ]);
  });

  it('batches tokens into one token event when batchMax is reached', async () => {
    vi.useFakeTimers({ now: 0 });
    const fake = fakeLog();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ batchMax: 3, batchMs: 1000 }));
    sink.token('a', 2);
    sink.token('b', 2);
    sink.token('c', 2);
    // The batch of three goes out at once, without any timer firing.
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]?.at).toBe(0);
    expect(fake.events()).toEqual([{ event: 'token', data: { text: 'abc', attempt: 2 } }]);
    // The full batch cancelled its timer, so the next batch waits its own batchMs.
    await vi.advanceTimersByTimeAsync(500);
    sink.token('d', 2);
    await vi.advanceTimersByTimeAsync(999);
    expect(fake.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(2);
    expect(fake.calls[1]?.at).toBe(1500);
    expect(fake.events()[1]).toEqual({ event: 'token', data: { text: 'd', attempt: 2 } });
  });

  it('flushes a partial batch after batchMs, counted from its first token', async () => {
    vi.useFakeTimers({ now: 0 });
    const fake = fakeLog();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ batchMax: 10, batchMs: 50 }));
    sink.token('a', 1);
    await vi.advanceTimersByTimeAsync(30);
    sink.token('b', 1);
    await vi.advanceTimersByTimeAsync(10);
    sink.token('c', 1);
    await vi.advanceTimersByTimeAsync(9);
    expect(fake.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]?.at).toBe(50);
    expect(fake.events()).toEqual([{ event: 'token', data: { text: 'abc', attempt: 1 } }]);
    // A new batch gets its own full batchMs; no timer of the first batch may cut it short.
    await vi.advanceTimersByTimeAsync(10);
    sink.token('d', 1);
    await vi.advanceTimersByTimeAsync(49);
    expect(fake.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.calls).toHaveLength(2);
    expect(fake.calls[1]?.at).toBe(110);
    expect(fake.events()[1]).toEqual({ event: 'token', data: { text: 'd', attempt: 1 } });
  });

  it('flushes pending tokens before an emitted event, and keeps one batch in flight at a time', async () => {
    // Each batch waits for the reply to the one before, so Redis applies them in order even when
    // a failover makes ioredis re-send commands; what comes meanwhile travels in the next batch.
    const fake = fakeLog({ delayMs: (n) => (n === 0 ? 20 : 0) });
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ batchMax: 10, batchMs: 10_000 }));
    const first = sink.emit(status());
    await Promise.resolve();
    sink.token('Hel', 1);
    sink.token('lo', 1);
    const done: AskEvent = {
      event: 'stage',
      data: { stage: 'generation', state: 'completed', ms: 12 },
    };
    const last = sink.emit(done);
    await expect(Promise.all([first, last])).resolves.toEqual([true, true]);
    expect(fake.events()).toEqual([
      status(),
      { event: 'token', data: { text: 'Hello', attempt: 1 } },
      done,
    ]);
    expect(fake.batches).toEqual([1, 2]);
    expect(fake.maxActive).toBe(1);
  });

  it('starts a new batch when the attempt changes', async () => {
    const fake = fakeLog();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ batchMax: 10, batchMs: 10_000 }));
    sink.token('a', 1);
    sink.token('b', 1);
    sink.token('c', 2);
    sink.token('d', 2);
    await sink.flush();
    expect(fake.events()).toEqual([
      { event: 'token', data: { text: 'ab', attempt: 1 } },
      { event: 'token', data: { text: 'cd', attempt: 2 } },
    ]);
  });

  it('flush() with nothing buffered appends nothing', async () => {
    const fake = fakeLog();
    const sink = createEventSink(fake.log, 'q1', sinkOptions());
    await sink.flush();
    expect(fake.calls).toHaveLength(0);
  });

  it('calls onRefused once and stops appending after the log refuses', async () => {
    const fake = fakeLog({ reply: () => null });
    const onRefused = vi.fn();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ onRefused, batchMax: 1 }));
    // Two emits in flight at once: both reach the log (which refuses both), one callback.
    const [a, b] = await Promise.all([sink.emit(status(1)), sink.emit(status(2))]);
    expect([a, b]).toEqual([false, false]);
    expect(onRefused).toHaveBeenCalledTimes(1);
    expect(fake.calls).toHaveLength(2);

    // Once refused, nothing but a terminal event is sent.
    sink.token('late', 1);
    sink.send(status(3));
    await sink.flush();
    expect(fake.calls).toHaveLength(2);
    // A terminal event still goes to the log, which decides (a requested cancel needs it).
    await expect(sink.emit({ event: 'cancelled', data: {} })).resolves.toBe(false);
    expect(fake.calls).toHaveLength(3);
    expect(fake.calls[2]!.event.event).toBe('cancelled');
    expect(onRefused).toHaveBeenCalledTimes(1);
  });

  it('does not call onRefused while appends succeed', async () => {
    const fake = fakeLog();
    const onRefused = vi.fn();
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ onRefused }));
    await sink.emit(status());
    expect(onRefused).not.toHaveBeenCalled();
  });

  it('turns a failed append into a retryable UNAVAILABLE error for every later call', async () => {
    const cause = new Error('ECONNRESET');
    const fake = fakeLog({ reply: () => cause });
    const sink = createEventSink(fake.log, 'q1', sinkOptions({ batchMax: 1 }));
    // The token write fails in the background; no one awaits it directly.
    sink.token('a', 1);
    const flushed = await sink.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(flushed).toBeInstanceOf(AppError);
    expect(flushed).toMatchObject({ code: 'UNAVAILABLE', retryable: true, cause });

    await expect(sink.emit(status())).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retryable: true,
    });
    await expect(sink.flush()).rejects.toBeInstanceOf(AppError);
    expect(fake.calls).toHaveLength(1);
  });

  it('rejects the emit whose append throws', async () => {
    const fake = fakeLog({ reply: (n) => (n === 1 ? new Error('READONLY') : `${n + 1}-0`) });
    const sink = createEventSink(fake.log, 'q1', sinkOptions());
    await expect(sink.emit(status(1))).resolves.toBe(true);
    const error = await sink.emit(status(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', retryable: true, status: 503 });
    await expect(sink.emit(status(3))).rejects.toBe(error);
    expect(fake.calls).toHaveLength(2);
  });
});
