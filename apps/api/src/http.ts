import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { ZodType } from 'zod';
import { AppError, toError, toPublicError, type ErrorCode, type Logger } from '@askq/shared';
import { isOpenAiPath, toOpenAiError } from './openai/errors.js';

// Actions (`POST /v1/responses/{id}/cancel`) take no body, and SDKs send them without one.
const ACTION = /\/cancel$/;

/** Rejects bodies that are not JSON with 415 before any parsing. */
export const requireJson: RequestHandler = (req, _res, next) => {
  const empty = !req.get('transfer-encoding') && Number(req.get('content-length') ?? 0) === 0;
  const action = ACTION.test(req.path) && empty;
  if (req.method === 'POST' && !action && !req.is('application/json')) {
    next(new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json'));
    return;
  }
  next();
};

/** Parses a body (or a named value) with its schema; every problem is listed with its field path. */
export function parseBody<T>(schema: ZodType<T>, body: unknown, root = '(body)'): T {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  throw new AppError(
    'INVALID_REQUEST',
    `the request ${root === '(body)' ? 'body' : root} is invalid`,
    {
      details: parsed.error.issues.map((issue) => ({
        path: issue.path.join('.') || root,
        message: issue.message,
      })),
    },
  );
}

/** Parses a query string with its schema, like a body. */
export function parseQuery<T>(schema: ZodType<T>, query: unknown): T {
  return parseBody(schema, query, 'query');
}

/** Answers unknown routes in the error shape. */
export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path}`));
};

/** body-parser's error types mapped to our codes. */
const BODY_ERRORS: Record<string, AppError> = {
  'entity.parse.failed': new AppError('INVALID_REQUEST', 'the body is not valid JSON'),
  'entity.too.large': new AppError('PAYLOAD_TOO_LARGE', 'the body is too large'),
  'encoding.unsupported': new AppError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content encoding'),
  'charset.unsupported': new AppError('UNSUPPORTED_MEDIA_TYPE', 'unsupported charset'),
};

const CLIENT_ERROR_CODES: Partial<Record<number, ErrorCode>> = {
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * Errors thrown by Express's own parts (the router decoding a malformed `%zz` in a path,
 * body-parser seeing a request aborted mid-body) carry a 4xx `status`: they are the client's
 * mistakes, not ours, and must not become a 500.
 */
function fromLibrary(err: unknown): unknown {
  if (err instanceof AppError || typeof err !== 'object' || err === null) return err;
  const { type, status, statusCode } = err as {
    type?: unknown;
    status?: unknown;
    statusCode?: unknown;
  };
  if (typeof type === 'string' && BODY_ERRORS[type]) return BODY_ERRORS[type];
  const code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' || code < 400 || code > 499) return err;
  return new AppError(CLIENT_ERROR_CODES[code] ?? 'INVALID_REQUEST', 'the request is malformed', {
    status: CLIENT_ERROR_CODES[code] ? code : 400,
    cause: err,
  });
}

/**
 * Maps every error to `{ error: { code, message } }`, or on the OpenAI-compatible routes to
 * OpenAI's `{ error: { message, type, code, param } }` (so SDKs raise their usual errors);
 * 4xx logged at info, 5xx at error.
 */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const mapped = fromLibrary(err);
    const { status, body } = toPublicError(mapped);
    const fields = {
      method: req.method,
      route: (req.route as { path?: string } | undefined)?.path,
      status,
      code: body.error.code,
    };
    if (status >= 500) log.error({ ...fields, err: toError(err) }, 'request failed');
    else log.info(fields, 'request rejected');
    if (res.headersSent) {
      res.end();
      return;
    }
    if (mapped instanceof AppError && mapped.retryAfterSeconds !== undefined) {
      res.setHeader('Retry-After', String(mapped.retryAfterSeconds));
    }
    res.status(status).json(isOpenAiPath(req.path) ? toOpenAiError(mapped).body : body);
  };
}
