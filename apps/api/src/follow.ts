import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import {
  AppError,
  TERMINAL_EVENTS,
  type AskqMetrics,
  type EventLog,
  type LoggedEvent,
  type Logger,
} from '@askq/shared';
import type { EventHub } from './event-hub.js';
import { createLiveStream } from './live-stream.js';
import type { TenantQuotas } from './quotas.js';
import { unavailable } from './unavailable.js';
import type { SseRegistry } from './sse.js';

/** Options of every question stream. */
export interface EventStreamOptions {
  heartbeatMs: number;
  maxBufferBytes: number;
  /** Sent once as `retry:` so browsers reconnect after this many milliseconds. */
  retryMs: number;
}

/** What following a question needs. */
export interface FollowDeps {
  hub: EventHub;
  events: EventLog;
  streams: SseRegistry;
  log: Logger;
  metrics: AskqMetrics;
  quotas: TenantQuotas;
  options: EventStreamOptions;
}

/** One of a tenant's open streams, held while a stream lives. */
export type StreamLease = Awaited<ReturnType<TenantQuotas['openStream']>>;

/** A stream of one question to one client, opened ahead of serving it. */
export interface OpenStream {
  /** Streams: waits for the tenant's stream lease (429 past the quota), then replays and goes live. */
  serve(writeHead: () => void): Promise<void>;
  /** Lets go of the subscription and the lease unused (the question was not streamed). */
  cancel(): void;
}

/**
 * Streams of questions to HTTP clients, in askq's event format or translated (OpenAI's). Each
 * counts against the tenant's open streams for as long as it lives, is ended at shutdown (its
 * client resumes elsewhere), and is counted in `askq_sse_connections`.
 */
export function createFollower(deps: FollowDeps) {
  const reserve = (tenant: string): Promise<StreamLease> => {
    const leased = deps.quotas.openStream(tenant, randomUUID());
    leased.catch(() => undefined);
    return leased;
  };

  return {
    /**
     * Takes one of the tenant's open streams ahead of the question (429 past the quota), so a
     * client that could not be streamed to is refused before anything is asked. Hand it to
     * {@link open}, or release it.
     */
    reserve,

    /**
     * Subscribes, and takes the tenant's stream lease, at once: the caller may read the question
     * meanwhile, and a live stream then starts one round trip sooner.
     */
    open(
      tenant: string,
      questionId: string,
      res: Response,
      options: {
        after?: string | undefined;
        format?: (event: LoggedEvent) => Buffer | string;
        /**
         * The last words of a stream cut short (shutdown, an unreadable log): nothing for
         * askq's own streams, whose clients resume by Last-Event-ID; an error the OpenAI SDKs
         * raise for theirs, so a cut answer is never taken for a whole one.
         */
        farewell?: () => string;
        /** A lease taken with {@link reserve}; by default one is taken now. */
        lease?: Promise<StreamLease>;
      } = {},
    ): OpenStream {
      const live = createLiveStream({
        questionId,
        after: options.after,
        output: res,
        hub: deps.hub,
        events: deps.events,
        log: deps.log,
        heartbeatMs: deps.options.heartbeatMs,
        maxBufferBytes: deps.options.maxBufferBytes,
        ...(options.format ? { format: options.format } : {}),
        ...(options.farewell ? { farewell: options.farewell } : {}),
        onSent: (count) => deps.metrics.sseEventsSent.inc(count),
        // Counted (and ended at shutdown) from the moment it streams: a refused subscription is
        // a 503, not a stream.
        onOpen: () => {
          deps.streams.add(res, options.farewell);
          deps.metrics.sseConnections.inc();
        },
        onClose: () => {
          if (deps.streams.delete(res)) deps.metrics.sseConnections.dec();
        },
      });
      const leased = options.lease ?? reserve(tenant);
      // Released once, however the request ends: the client may leave during any await, and
      // 'close' fires only once, so the listener is in place from the start (and a client that
      // left before it, while the caller was asking, lets go at once).
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
      if (res.closed) dropLease();

      return {
        cancel() {
          live.cancel();
          dropLease();
        },

        async serve(writeHead) {
          let lease: Awaited<typeof leased>;
          try {
            lease = await leased;
          } catch (e) {
            live.cancel();
            throw e instanceof AppError ? e : unavailable(e);
          }
          // Renewed while open: a stream counts against the quota as long as it lives, and a
          // crashed process's streams stop counting within a few heartbeats.
          if (!dropped) {
            renewal = setInterval(
              () => void lease.renew().catch(() => undefined),
              deps.options.heartbeatMs,
            );
            renewal.unref();
          }
          res.once('close', () => live.close());
          // The client may have gone already; 'close' will not fire again.
          if (res.closed) {
            live.close();
            dropLease();
            return;
          }
          // A subscription Redis refused is a 503, as everywhere.
          await live.serve(writeHead).catch(unavailable);
        },
      };
    },

    /**
     * Resolves with a question's terminal event, for a client that waits for the whole answer
     * (an unstreamed chat completion), or undefined when `signal` aborts (the client left). At
     * shutdown it rejects with 503: the client asks again elsewhere (with its Idempotency-Key,
     * for the same question), rather than holding this process open until the answer.
     */
    async end(questionId: string, signal: AbortSignal): Promise<LoggedEvent | undefined> {
      let terminal: LoggedEvent | undefined;
      let finish: () => void = () => {};
      const ended = new Promise<void>((resolve) => (finish = resolve));
      const live = createLiveStream({
        questionId,
        after: undefined,
        // Nothing is written: the events are only watched for the last one.
        output: {
          write: () => true,
          writableLength: 0,
          writableEnded: false,
          writableNeedDrain: false,
          end: () => finish(),
          destroy: () => finish(),
          // Never buffers, so never waits for a drain.
          once: () => undefined,
          off: () => undefined,
        },
        hub: deps.hub,
        events: deps.events,
        log: deps.log,
        heartbeatMs: deps.options.heartbeatMs,
        maxBufferBytes: deps.options.maxBufferBytes,
        format: (event) => {
          terminal = event;
          return '';
        },
      });
      const leave = () => {
        live.close();
        finish();
      };
      let shutDown = false;
      const unregister = deps.streams.addWaiter(() => {
        shutDown = true;
        leave();
      });
      signal.addEventListener('abort', leave, { once: true });
      // A client gone before this (during the ask) fires no abort event any more.
      if (signal.aborted) leave();
      try {
        await live.serve(() => undefined).catch(unavailable);
        await ended;
      } finally {
        signal.removeEventListener('abort', leave);
        unregister();
      }
      if (signal.aborted) return undefined;
      if (shutDown) {
        throw new AppError('UNAVAILABLE', 'this API process is shutting down: ask again', {
          retryAfterSeconds: 1,
        });
      }
      if (!terminal || !TERMINAL_EVENTS.has(terminal.event)) {
        throw new AppError('UNAVAILABLE', 'the question’s events could not be read', {
          retryAfterSeconds: 1,
        });
      }
      return terminal;
    },
  };
}

/** Follows questions for HTTP clients. */
export type Follower = ReturnType<typeof createFollower>;
