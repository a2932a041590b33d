import { Router, type Request, type Response } from 'express';
import {
  AppError,
  isEventId,
  logPages,
  TERMINAL_STATUSES,
  type EventLog,
  type LoggedEvent,
} from '@askq/shared';
import type { Follower } from '../follow.js';
import { drained } from '../live-stream.js';
import type { QuestionService } from '../question-service.js';
import { unavailable } from '../unavailable.js';
import { formatSseFrame, writeSseHead } from '../sse.js';

/** `GET /v1/questions/{id}/events`: the question's event log, replayed and then live (SPEC 3). */
export function eventRoutes(deps: {
  questions: QuestionService;
  events: EventLog;
  follower: Follower;
  metrics: { sseEventsSent: { inc(n: number): void } };
  retryMs: number;
  /** How long a client may take to read a page of a finished question's log. */
  drainTimeoutMs: number;
}): Router {
  const router = Router();

  /**
   * A finished question's log after `after`, a page at a time, each read once the client has
   * taken the one before: a client that does not read holds one page in memory, not the log.
   */
  const replayFinished = async (id: string, after: string | undefined, res: Response) => {
    const pages = logPages(deps.events, id, after);
    // Redis trouble before anything is sent is a 503, as everywhere: the client may try again.
    const first = await pages.next().catch(unavailable);
    // Nothing left after the terminal event: 204 tells EventSource to stop reconnecting.
    if (first.done) {
      res.status(204).end();
      return;
    }
    writeSseHead(res, deps.retryMs);
    try {
      let next: IteratorResult<LoggedEvent[]> = first;
      while (!next.done) {
        res.write(next.value.map(formatSseFrame).join(''));
        deps.metrics.sseEventsSent.inc(next.value.length);
        // A client that takes nothing for this long is let go (it resumes when it reads again).
        if (!(await drained(res, deps.drainTimeoutMs)) || res.destroyed) {
          res.destroy();
          return;
        }
        next = await pages.next();
      }
    } catch {
      // A read failed mid-way: the client resumes from the last id it has.
      res.destroy();
      return;
    }
    res.end();
  };

  router.get('/v1/questions/:id/events', async (req, res) => {
    const id = req.params.id;
    const tenant = res.locals.tenant as string;
    const after = lastEventId(req);
    // The tenant's question first (404 otherwise): nothing is subscribed to, and no stream lease
    // taken, for an id the caller does not own.
    const view = await deps.questions.get(tenant, id);
    if (TERMINAL_STATUSES.has(view.status)) {
      await replayFinished(id, after, res);
      return;
    }
    await deps.follower
      .open(tenant, id, res, { after })
      .serve(() => writeSseHead(res, deps.retryMs));
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
