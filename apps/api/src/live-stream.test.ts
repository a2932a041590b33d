import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventLog, LoggedEvent } from '@askq/shared';
import type { EventHub, EventListener } from './event-hub.js';
import { createLiveStream, type StreamOutput } from './live-stream.js';

// The live stream's states against fakes: a hub whose events the test publishes, a log it fills,
// and an output that records what a client would have received.
const event = (n: number, name = 'token', prev?: number): LoggedEvent => ({
  id: `${n}-0`,
  event: name as LoggedEvent['event'],
  data: `{"n":${n}}`,
  ...(prev === undefined ? {} : { prev: `${prev}-0` }),
});

function fakes(logged: LoggedEvent[] = []) {
  let listener: EventListener | undefined;
  let releases = 0;
  let confirm: () => void = () => {};
  let refuse: () => void = () => {};
  const hub: EventHub = {
    subscribe(_id, l) {
      listener = l;
      return new Promise((resolve, reject) => {
        confirm = () => resolve(() => void releases++);
        refuse = () => reject(new Error('subscription refused'));
      });
    },
  };
  const reads: Array<string | undefined> = [];
  let gate: Promise<void> = Promise.resolve();
  const events: EventLog = {
    append: () => Promise.reject(new Error('not used')),
    appendAll: () => Promise.reject(new Error('not used')),
    async read(_id, after, limit) {
      reads.push(after);
      await gate;
      const rest = logged.filter((e) => after === undefined || e.id.localeCompare(after) > 0);
      return limit === undefined ? rest : rest.slice(0, limit);
    },
  };
  const written: string[] = [];
  const drains: Array<() => void> = [];
  const closes: Array<() => void> = [];
  const output: StreamOutput & { ended: boolean; destroyed: boolean; buffered: number } = {
    ended: false,
    destroyed: false,
    buffered: 0,
    write(chunk) {
      // As a real response does (it throws in the process, from an 'error' event).
      if (this.ended) throw new Error('write after end');
      written.push(String(chunk));
      return this.buffered === 0;
    },
    get writableEnded() {
      return this.ended;
    },
    get writableLength() {
      return this.buffered;
    },
    get writableNeedDrain() {
      return this.buffered > 0;
    },
    end() {
      this.ended = true;
    },
    destroy() {
      this.destroyed = true;
    },
    once(event, listener) {
      (event === 'drain' ? drains : closes).push(listener);
    },
    off(event, listener) {
      const list = event === 'drain' ? drains : closes;
      if (list.includes(listener)) list.splice(list.indexOf(listener), 1);
    },
  };
  return {
    hub,
    events,
    output,
    written,
    reads,
    logged,
    confirm: () => confirm(),
    refuse: () => refuse(),
    publish: (...batch: LoggedEvent[]) => listener!.onEvents(batch),
    resync: () => listener!.onResync(),
    hold: () => {
      let open: () => void = () => {};
      gate = new Promise((resolve) => (open = resolve));
      return () => open();
    },
    releases: () => releases,
    /** The client takes what was buffered. */
    drain: () => {
      output.buffered = 0;
      for (const listener of [...drains]) listener();
    },
    listeners: () => drains.length + closes.length,
    // Every frame's id, however many one write carried.
    ids: () => [...written.join('').matchAll(/^id: (\S+)$/gm)].map((m) => m[1]),
  };
}

const stream = (
  f: ReturnType<typeof fakes>,
  after?: string,
  heartbeatMs = 60_000,
  hooks: { onOpen?: () => void; onClose?: () => void } = {},
) =>
  createLiveStream({
    ...hooks,
    questionId: 'q',
    after,
    output: f.output,
    hub: f.hub,
    events: f.events,
    log: pino({ level: 'silent' }),
    heartbeatMs,
    maxBufferBytes: 100,
  });

/** A stream served until it is live: subscribed, the subscription confirmed, the log replayed. */
async function served(f: ReturnType<typeof fakes>, heartbeatMs?: number) {
  const live = stream(f, undefined, heartbeatMs);
  const serving = live.serve(() => undefined);
  f.confirm();
  await serving;
  return live;
}

afterEach(() => vi.useRealTimers());

describe('createLiveStream', () => {
  it('subscribes, replays the log, then goes live with nothing lost or repeated in between', async () => {
    const f = fakes([event(1), event(2)]);
    const live = stream(f, '1-0');
    expect(live.state).toBe('subscribing');
    const open = f.hold();
    const serving = live.serve(() => f.written.push('HEAD\n'));
    f.confirm();
    await vi.waitFor(() => expect(live.state).toBe('replaying'));
    // Published while the log is read: 2 is in the log too, 3 is new.
    f.publish(event(2, 'token', 1), event(3, 'token', 2));
    open();
    await serving;
    expect(live.state).toBe('live');
    f.publish(event(4, 'token', 3));
    expect(f.written[0]).toBe('HEAD\n');
    expect(f.ids()).toEqual(['2-0', '3-0', '4-0']);
    expect(f.reads).toEqual(['1-0']);
  });

  it('reads the log again when a live event shows one was lost on the way', async () => {
    const f = fakes([event(1), event(2), event(3)]);
    const live = await served(f);
    f.logged.push(event(4), event(5));
    // 5 names 4 as its predecessor, and 4 never arrived.
    f.publish(event(5, 'token', 4));
    await vi.waitFor(() => expect(f.ids()).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0']));
    expect(f.reads).toEqual([undefined, '3-0']);
    expect(live.state).toBe('live');
  });

  it('closes after a terminal event, ends the response and lets go of the subscription', async () => {
    const f = fakes([event(1)]);
    const live = await served(f);
    f.publish(event(2, 'completed', 1), event(3, 'token', 2));
    expect(live.state).toBe('closed');
    expect(f.output.ended).toBe(true);
    expect(f.ids()).toEqual(['1-0', '2-0']);
    await vi.waitFor(() => expect(f.releases()).toBe(1));
  });

  it('re-reads the log after a heartbeat with nothing sent, and after the hub resynced', async () => {
    vi.useFakeTimers();
    const f = fakes([event(1)]);
    const live = await served(f, 1_000);
    f.logged.push(event(2));
    await vi.advanceTimersByTimeAsync(1_000); // the first beat: something was sent before it
    await vi.advanceTimersByTimeAsync(1_000); // a quiet one: the log is read again
    expect(f.ids()).toEqual(['1-0', '2-0']);
    expect(f.written.filter((w) => w === ': ping\n\n')).toHaveLength(2);
    f.logged.push(event(3));
    f.resync();
    await vi.waitFor(() => expect(f.ids()).toEqual(['1-0', '2-0', '3-0']));
    live.close();
  });

  it('drops a client that cannot keep up, so it resumes from its last event', async () => {
    const f = fakes([]);
    const live = await served(f);
    f.output.buffered = 500;
    f.publish(event(1, 'token'));
    expect(live.state).toBe('closed');
    expect(f.output.destroyed).toBe(true);
  });

  it('writes nothing once closed, even if the log read was still out', async () => {
    const f = fakes([event(1)]);
    const live = stream(f);
    const open = f.hold();
    const serving = live.serve(() => undefined);
    f.confirm();
    await vi.waitFor(() => expect(live.state).toBe('replaying'));
    live.close();
    open();
    await serving;
    expect(f.ids()).toEqual([]);
    await vi.waitFor(() => expect(f.releases()).toBe(1));
  });

  it('opens (onOpen) only once the subscription is confirmed, just before the head', async () => {
    const f = fakes([event(1)]);
    const live = stream(f, undefined, 60_000, { onOpen: () => f.written.push('OPEN\n') });
    const serving = live.serve(() => f.written.push('HEAD\n'));
    await Promise.resolve();
    expect(f.written).toEqual([]);
    f.confirm();
    await serving;
    expect(f.written.slice(0, 2)).toEqual(['OPEN\n', 'HEAD\n']);
  });

  it('never opens when the subscription is refused, and closes', async () => {
    const f = fakes();
    let opened = 0;
    let closed = 0;
    const live = stream(f, undefined, 60_000, {
      onOpen: () => void opened++,
      onClose: () => void closed++,
    });
    const serving = live.serve(() => f.written.push('HEAD\n'));
    f.refuse();
    await expect(serving).rejects.toThrow('subscription refused');
    live.close();
    expect({ opened, closed, written: f.written }).toEqual({ opened: 0, closed: 1, written: [] });
  });

  it('lets go of a subscription it never served', async () => {
    const f = fakes();
    const live = stream(f);
    live.cancel();
    f.confirm();
    await vi.waitFor(() => expect(f.releases()).toBe(1));
    expect(live.state).toBe('closed');
  });
});

/** A stream that replays two events a page, with a buffer no page fills. */
const paged = (f: ReturnType<typeof fakes>, heartbeatMs: number) =>
  createLiveStream({
    questionId: 'q',
    after: undefined,
    output: f.output,
    hub: f.hub,
    events: f.events,
    log: pino({ level: 'silent' }),
    heartbeatMs,
    maxBufferBytes: 1_000_000,
    pageSize: 2,
  });

describe('a response ended from outside (shutdown ends every stream)', () => {
  it('writes nothing more to it, live events and heartbeats alike, and closes', async () => {
    vi.useFakeTimers();
    const f = fakes([event(1)]);
    const live = await served(f, 1_000);
    expect(live.state).toBe('live');
    const before = f.written.length;
    f.output.end();
    f.publish(event(2, 'token', 1));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(f.written.length).toBe(before);
    expect(live.state).toBe('closed');
    expect(f.releases()).toBe(1);
  });

  it('stops waiting for a subscription once closed, and lets it go when it comes', async () => {
    const f = fakes([event(1)]);
    const opened = vi.fn();
    const live = stream(f, undefined, 60_000, { onOpen: opened });
    const serving = live.serve(() => undefined);
    live.close();
    await serving;
    expect(opened).not.toHaveBeenCalled();
    f.confirm();
    await vi.waitFor(() => expect(f.releases()).toBe(1));
    expect(f.written).toEqual([]);
  });
});

describe('replay in pages', () => {
  it('drops a client that takes no page for two heartbeats', async () => {
    vi.useFakeTimers();
    const f = fakes([event(1), event(2), event(3)]);
    const live = paged(f, 1_000);
    f.output.buffered = 1;
    f.confirm();
    const serving = live.serve(() => undefined);
    await vi.waitFor(() => expect(f.ids()).toEqual(['1-0', '2-0']));
    await vi.advanceTimersByTimeAsync(2_000);
    await serving;
    expect(f.output.destroyed).toBe(true);
    expect(live.state).toBe('closed');
    expect(f.listeners()).toBe(0);
  });

  it('reads the next page only once the client has taken the last, and holds no listener after', async () => {
    const f = fakes([event(1), event(2), event(3), event(4), event(5)]);
    const live = paged(f, 60_000);
    // The client reads nothing: every write stays buffered.
    f.output.buffered = 1;
    f.confirm();
    const serving = live.serve(() => undefined);
    await vi.waitFor(() => expect(f.ids()).toEqual(['1-0', '2-0']));
    // Waiting for the client, not reading on.
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.reads).toEqual([undefined]);
    f.drain();
    f.output.buffered = 1;
    await vi.waitFor(() => expect(f.ids()).toEqual(['1-0', '2-0', '3-0', '4-0']));
    f.drain();
    await serving;
    expect(f.ids()).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0']);
    expect(f.reads).toEqual([undefined, '2-0', '4-0']);
    expect(live.state).toBe('live');
    expect(f.listeners()).toBe(0);
    live.close();
  });
});
