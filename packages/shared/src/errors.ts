/** Stable error codes clients can switch on (SPEC 2, 3). */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'IDEMPOTENCY_MISMATCH'
  | 'RATE_LIMITED'
  | 'OVERLOADED'
  | 'QUOTA_EXCEEDED'
  | 'UNAVAILABLE'
  | 'INTERNAL'
  | 'LLM_UNAVAILABLE'
  | 'LLM_REJECTED'
  | 'LLM_TIMEOUT'
  | 'JOB_TIMEOUT'
  | 'LOST'
  | 'RETRIEVAL_FAILED'
  | 'EMBEDDER_MISMATCH'
  | 'EMBEDDINGS_UNAVAILABLE'
  | 'VALIDATION_FAILED'
  | 'CONTENT_TOO_COMPLEX'
  | 'CANCELLED';

const DEFAULT_STATUS: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_MISMATCH: 422,
  RATE_LIMITED: 429,
  OVERLOADED: 503,
  QUOTA_EXCEEDED: 403,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  LLM_UNAVAILABLE: 502,
  LLM_REJECTED: 502,
  LLM_TIMEOUT: 504,
  JOB_TIMEOUT: 504,
  LOST: 503,
  RETRIEVAL_FAILED: 502,
  EMBEDDER_MISMATCH: 409,
  EMBEDDINGS_UNAVAILABLE: 502,
  VALIDATION_FAILED: 422,
  CONTENT_TOO_COMPLEX: 422,
  CANCELLED: 409,
};

/** Whether a string is one of askq's error codes (a failed question's code, read back). */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(DEFAULT_STATUS, value);
}

/** Options of an AppError beyond its code and message. */
export interface AppErrorOptions {
  status?: number;
  /** Whether another attempt may succeed (the worker retries only these). */
  retryable?: boolean;
  details?: unknown;
  /** Seconds a client or the queue should wait before trying again. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** An error with a stable code; its message is safe to show to clients. */
export class AppError extends Error {
  readonly status: number;
  readonly retryable: boolean;
  readonly details: unknown;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.status = options.status ?? DEFAULT_STATUS[code];
    this.retryable = options.retryable ?? false;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Turns anything thrown into an Error, for `catch (e)`. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string;
  try {
    // Circular objects and BigInts make JSON.stringify throw; a catch block must never throw.
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new Error(text);
}

/** The body clients see: `{ error: { code, message, details? } }`; never a stack trace. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** Maps any error to its HTTP status and public body; unknown errors become 500 INTERNAL. */
export function toPublicError(value: unknown): { status: number; body: ErrorBody } {
  if (value instanceof AppError) {
    const error: ErrorBody['error'] = { code: value.code, message: value.message };
    if (value.details !== undefined) error.details = value.details;
    return { status: value.status, body: { error } };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } } };
}
