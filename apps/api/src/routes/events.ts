import { randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import {
  AppError,
  isEventId,
  TERMINAL_STATUSES,
  type AskqMetrics,
  type EventLog,
  type Logger,
} from '@askq/shared';
import type { EventHub } from '../event-hub.js';
import { createLiveStream } from '../live-stream.js';
import type { TenantQuotas } from '../quotas.js';
import { unavailable, type QuestionService } from '../question-service.js';
import { formatSseFrame, writeSseHead, type SseRegistry } from '../sse.js';

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
    const live = createLiveStream({
      questionId: id,
      after,
      output: res,
      hub: deps.hub,
      events: deps.events,
      log: deps.log,
      heartbeatMs: deps.options.heartbeatMs,
      maxBufferBytes: deps.options.maxBufferBytes,
      onSent: (count) => deps.metrics.sseEventsSent.inc(count),
      // Counted (and ended at shutdown) from the moment it streams: a refused subscription is a
      // 503, not a stream.
      onOpen: () => {
        deps.streams.add(res);
        deps.metrics.sseConnections.inc();
      },
      onClose: () => {
        if (deps.streams.delete(res)) deps.metrics.sseConnections.dec();
      },
    });
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
    res.once('close', () => live.close());
    // The client may have gone while the record was read; 'close' will not fire again.
    if (res.closed) {
      live.close();
      return;
    }
    // A subscription Redis refused is a 503, as everywhere.
    await live.serve(() => writeSseHead(res, deps.options.retryMs)).catch(unavailable);
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
