import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import {
  AppError,
  compareEventIds,
  isEventId,
  TERMINAL_EVENTS,
  TERMINAL_STATUSES,
  toError,
  type AskqMetrics,
  type EventLog,
  type LoggedEvent,
  type Logger,
} from '@askq/shared';
import type { EventHub } from '../event-hub.js';
import type { TenantQuotas } from '../quotas.js';
import { unavailable, type QuestionService } from '../question-service.js';
import { formatSseFrame, sseFrameBytes, writeSseHead, type SseRegistry } from '../sse.js';

/** Options of the event stream route. */
export interface EventStreamOptions {
  heartbeatMs: number;
  maxBufferBytes: number;
  /** Sent once as `retry:` so browsers reconnect after this many milliseconds. */
  retryMs: number;
}

/** `GET /v1/questions/{id}/events`: the question's event log, replayed and then live (SPEC 3). */
export function eventRoutes(deps: {
  questions: QuestionService;
  events: EventLog;
  hub: EventHub;
  streams: SseRegistry;
  log: Logger;
  metrics: AskqMetrics;
  options: EventStreamOptions;
  quotas: TenantQuotas;
}): Router {
  const router = Router();

  router.get('/v1/questions/:id/events', async (req, res) => {
    const id = req.params.id;
    const tenant = res.locals.tenant as string;
    const after = lastEventId(req);
    // Subscribed, and the tenant's stream lease taken, while the record is read: a live stream
    // starts one round trip sooner. A stream that will not be served live (finished, missing,
    // another tenant's, over the quota) drops both unused.
    const live = liveStream(id, after, res, deps);
    const leased = deps.quotas.openStream(tenant, randomUUID());
    leased.catch(() => undefined);
    // Released once, however the request ends: the client may leave during any await below, and
    // 'close' fires only once, so the listener is in place from the start.
    let renewal: NodeJS.Timeout | undefined;
    let dropped = false;
    const dropLease = () => {
      if (dropped) return;
      dropped = true;
      clearInterval(renewal);
      void leased.then(
        (lease) => lease.release().catch(() => undefined),
        () => undefined,
      );
    };
    res.once('close', dropLease);
    let view;
    try {
      view = await deps.questions.get(tenant, id);
    } catch (e) {
      live.cancel();
      dropLease();
      throw e;
    }

    if (TERMINAL_STATUSES.has(view.status)) {
      live.cancel();
      dropLease();
      // Redis trouble is a 503, as everywhere: the client may try again.
      const backlog = await deps.events.read(id, after).catch(unavailable);
      // Nothing left after the terminal event: 204 tells EventSource to stop reconnecting.
      if (backlog.length === 0) {
        res.status(204).end();
        return;
      }
      writeSseHead(res, deps.options.retryMs);
      res.end(backlog.map(formatSseFrame).join(''));
      deps.metrics.sseEventsSent.inc(backlog.length);
      return;
    }
    let lease: Awaited<typeof leased>;
    try {
      lease = await leased;
    } catch (e) {
      live.cancel();
      throw e instanceof AppError ? e : unavailable(e);
    }
    // Renewed while open: a stream counts against the quota as long as it lives, and a crashed
    // process's streams stop counting within a few heartbeats.
    if (!dropped) {
      renewal = setInterval(
        () => void lease.renew().catch(() => undefined),
        deps.options.heartbeatMs,
      );
      renewal.unref();
    }
    await live.serve();
  });

  return router;
}

function lastEventId(req: Request): string | undefined {
  // Browsers send the header only on their own reconnects; `?lastEventId=` serves manual resumes.
  const value = req.get('last-event-id') ?? req.query.lastEventId;
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !isEventId(value)) {
    throw new AppError(
      'INVALID_REQUEST',
      'Last-Event-ID must be an event id such as 1700000000000-0',
    );
  }
  return value;
}

/**
 * Subscribes before replaying so nothing published in between is lost; events that arrive while
 * the backlog is read wait in `pending`, and any id at or before the last one sent is dropped.
 * The subscription starts at once; `serve` streams, `cancel` drops it unused.
 */
function liveStream(
  id: string,
  after: string | undefined,
  res: Response,
  deps: Parameters<typeof eventRoutes>[0],
): { serve(): Promise<void>; cancel(): void } {
  let lastSent = after;
  let catchingUp = true;
  let started = false;
  let quiet = true;
  let closed = false;
  let pending: LoggedEvent[] = [];

  /**
   * Writes the events not sent yet in one write; ends the stream after a terminal event. A live
   * event whose predecessor is not the last one sent means pub/sub lost one on the way: then
   * the log is read from there instead.
   */
  const deliver = (events: LoggedEvent[], live: boolean) => {
    if (closed) return;
    const frames: Buffer[] = [];
    let terminal = false;
    let gap = false;
    for (const event of events) {
      if (lastSent !== undefined && compareEventIds(event.id, lastSent) <= 0) continue;
      if (live && event.prev !== lastSent) {
        gap = true;
        break;
      }
      lastSent = event.id;
      frames.push(sseFrameBytes(event));
      if (TERMINAL_EVENTS.has(event.event)) {
        terminal = true;
        break;
      }
    }
    if (gap) void catchUp();
    if (frames.length === 0) return;
    quiet = false;
    const flushed = res.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    deps.metrics.sseEventsSent.inc(frames.length);
    if (terminal) {
      finish();
      res.end();
    } else if (!flushed && res.writableLength > deps.options.maxBufferBytes) {
      // A client that cannot keep up is dropped; it resumes from its Last-Event-ID.
      deps.log.warn({ questionId: id, buffered: res.writableLength }, 'dropping slow SSE client');
      finish();
      res.destroy();
    }
  };

  const catchUp = async () => {
    if (catchingUp && started) return;
    started = true;
    catchingUp = true;
    try {
      deliver(await deps.events.read(id, lastSent), false);
    } catch (e) {
      deps.log.warn({ err: toError(e), questionId: id }, 'event log read failed; ending stream');
      finish();
      res.end();
      return;
    }
    catchingUp = false;
    const queued = pending;
    pending = [];
    deliver(queued, true);
  };

  const subscribed = deps.hub.subscribe(id, {
    onEvents: (events) => (catchingUp ? pending.push(...events) : deliver(events, true)),
    // Before serve, nothing was read yet: its first read covers whatever was missed.
    onResync: () => void (started && catchUp()),
  });
  // Awaited by serve, or dropped by cancel; never unhandled in between.
  subscribed.catch(() => undefined);
  let unsubscribe = () => {};
  let heartbeat: NodeJS.Timeout | undefined;

  function finish() {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
    if (deps.streams.delete(res)) deps.metrics.sseConnections.dec();
  }

  const serve = async () => {
    unsubscribe = await subscribed;
    // Pub/sub is best effort (a message published while the subscriber moves to another cluster
    // node is gone). The next event reveals a lost one (see deliver); a lost last event has no
    // next, so a stream that stayed quiet for a whole heartbeat also re-reads the log.
    heartbeat = setInterval(() => {
      res.write(': ping\n\n');
      if (quiet) void catchUp();
      quiet = true;
    }, deps.options.heartbeatMs);
    heartbeat.unref();
    res.on('close', finish);
    // The client may have gone while we waited for the subscription; 'close' will not fire again.
    if (res.closed) {
      finish();
      return;
    }
    deps.streams.add(res);
    deps.metrics.sseConnections.inc();

    writeSseHead(res, deps.options.retryMs);
    await catchUp();
  };

  return {
    serve,
    cancel: () =>
      void subscribed.then(
        (release) => release(),
        () => undefined,
      ),
  };
}
