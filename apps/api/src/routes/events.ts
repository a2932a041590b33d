import { Router, type Request } from 'express';
import { AppError, isEventId, TERMINAL_STATUSES, type EventLog } from '@askq/shared';
import type { Follower } from '../follow.js';
import { unavailable, type QuestionService } from '../question-service.js';
import { formatSseFrame, writeSseHead } from '../sse.js';

/** `GET /v1/questions/{id}/events`: the question's event log, replayed and then live (SPEC 3). */
export function eventRoutes(deps: {
  questions: QuestionService;
  events: EventLog;
  follower: Follower;
  metrics: { sseEventsSent: { inc(n: number): void } };
  retryMs: number;
}): Router {
  const router = Router();

  router.get('/v1/questions/:id/events', async (req, res) => {
    const id = req.params.id;
    const tenant = res.locals.tenant as string;
    const after = lastEventId(req);
    // Subscribed, and the tenant's stream lease taken, while the record is read. A stream that
    // will not be served live (finished, missing, another tenant's, over the quota) drops both.
    const stream = deps.follower.open(tenant, id, res, { after });
    let view;
    try {
      view = await deps.questions.get(tenant, id);
    } catch (e) {
      stream.cancel();
      throw e;
    }

    if (TERMINAL_STATUSES.has(view.status)) {
      stream.cancel();
      // Redis trouble is a 503, as everywhere: the client may try again.
      const backlog = await deps.events.read(id, after).catch(unavailable);
      // Nothing left after the terminal event: 204 tells EventSource to stop reconnecting.
      if (backlog.length === 0) {
        res.status(204).end();
        return;
      }
      writeSseHead(res, deps.retryMs);
      res.end(backlog.map(formatSseFrame).join(''));
      deps.metrics.sseEventsSent.inc(backlog.length);
      return;
    }
    await stream.serve(() => writeSseHead(res, deps.retryMs));
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
