import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { Router, type Express, type RequestHandler } from 'express';
import { AppError } from '@askq/shared';
import { keyDigest, sameKey } from '../auth.js';

/** Where Bull Board is served; its adapter must know the public path or its assets 404. */
export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Admin access (SPEC 2): with ADMIN_API_KEY set, `Authorization: Bearer <key>`, or HTTP basic auth
 * with any user name and the key as password (so a browser can open the dashboard). Without a
 * key the routes are open, and Bull Board is read-only.
 */
export function requireAdmin(adminKey: string | undefined, authOn: boolean): RequestHandler {
  const expected = adminKey === undefined ? undefined : keyDigest(adminKey);
  return (req, res, next) => {
    if (!expected) {
      // With tenants configured, an unset admin key closes the admin routes rather than opening them.
      if (authOn) next(new AppError('UNAUTHORIZED', 'admin routes are closed: set ADMIN_API_KEY'));
      else next();
      return;
    }
    if (matches(presentedKey(req.get('authorization')), expected)) {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Basic realm="askq admin", charset="UTF-8"');
    next(
      new AppError(
        'UNAUTHORIZED',
        'admin routes need ADMIN_API_KEY (Bearer, or basic auth password)',
      ),
    );
  };
}

function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value = ''] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

function matches(presented: string | undefined, expected: Buffer): boolean {
  return presented !== undefined && sameKey(presented, expected);
}

/** `/admin/queues`: Bull Board for the given queues, behind admin auth. */
export function adminRoutes(options: {
  /** Each queue with the name Bull Board shows; shards of one queue share its BullMQ name. */
  queues: Array<{ queue: Queue; label: string }>;
  adminKey: string | undefined;
  authOn: boolean;
}): Router {
  const board = new ExpressAdapter();
  board.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: options.queues.map(({ queue, label }, i) => {
      // Bull Board keys queues by prefix + name; shards share a name, so they get a prefix.
      const shared = options.queues.filter((q) => q.queue.name === queue.name).length > 1;
      return new BullMQAdapter(queue, {
        readOnlyMode: options.adminKey === undefined,
        displayName: label,
        ...(shared ? { prefix: `s${i}.` } : {}),
      });
    }),
    serverAdapter: board,
  });
  const router = Router();
  router.use(requireAdmin(options.adminKey, options.authOn));
  // Bodies are parsed here first, so a malformed one gets askq's error shape from askq's error
  // handler instead of Bull Board's own (which repeats the parser's message).
  const boardApp = board.getRouter() as Express;
  boardApp.disable('x-powered-by');
  router.use('/queues', express.json({ limit: '64kb' }), boardApp);
  return router;
}
