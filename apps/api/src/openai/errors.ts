import {
  AppError,
  isErrorCode,
  toPublicError,
  type ErrorCode,
  type PublicError,
} from '@askq/shared';

/** OpenAI's error body: SDKs turn it into their `APIError` subclass for the status. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

/** The paths served in OpenAI's shapes: their errors are in OpenAI's shape too. */
const OPENAI_PATHS = /^\/v1\/(?:chat\/completions|responses|models)(?:\/|$)/;

/** Whether a request path is one of the OpenAI-compatible routes. */
export function isOpenAiPath(path: string): boolean {
  return OPENAI_PATHS.test(path);
}

/** OpenAI's error `type` for a status, as its own API uses them. */
function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

// The codes OpenAI's clients know, where askq's mean the same; the rest are askq's, lowercased.
const CODES: Partial<Record<ErrorCode, string>> = {
  UNAUTHORIZED: 'invalid_api_key',
  RATE_LIMITED: 'rate_limit_exceeded',
  INVALID_REQUEST: 'invalid_request_error',
};

/** Any error as OpenAI's routes answer it: status, body, and Retry-After when there is one. */
export function toOpenAiError(value: unknown): {
  status: number;
  body: OpenAiErrorBody;
  retryAfterSeconds?: number;
} {
  const { status, body } = toPublicError(value);
  const { code, message, details } = body.error;
  // The first field at fault, as OpenAI's `param` names it.
  const param = Array.isArray(details)
    ? ((details[0] as { path?: unknown } | undefined)?.path ?? null)
    : null;
  const specific = value instanceof OpenAiRouteError ? value.openAiCode : undefined;
  return {
    status,
    body: {
      error: {
        message,
        type: typeOf(status),
        code: specific ?? CODES[code] ?? code.toLowerCase(),
        param: typeof param === 'string' ? param : null,
      },
    },
    ...(value instanceof AppError && value.retryAfterSeconds !== undefined
      ? { retryAfterSeconds: value.retryAfterSeconds }
      : {}),
  };
}

/** A question's failure as an error: its status follows its code, like everywhere in askq. */
export function questionFailure(error: PublicError): AppError {
  return new AppError(isErrorCode(error.code) ? error.code : 'INTERNAL', error.message);
}

/** An error with the `code` OpenAI's own API gives for it (e.g. `model_not_found`). */
export class OpenAiRouteError extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly openAiCode: string,
    param?: string,
  ) {
    super(code, message, param ? { details: [{ path: param, message }] } : {});
  }
}
