import { describe, expect, it } from 'vitest';
import { AppError, toError, toPublicError, type ErrorCode } from './errors.js';

describe('AppError', () => {
  it.each<[ErrorCode, number]>([
    ['INVALID_REQUEST', 400],
    ['UNAUTHORIZED', 401],
    ['NOT_FOUND', 404],
    ['CONFLICT', 409],
    ['PAYLOAD_TOO_LARGE', 413],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['IDEMPOTENCY_MISMATCH', 422],
    ['RATE_LIMITED', 429],
    ['INTERNAL', 500],
    ['LLM_UNAVAILABLE', 502],
    ['UNAVAILABLE', 503],
    ['LLM_TIMEOUT', 504],
    ['JOB_TIMEOUT', 504],
    ['CANCELLED', 409],
  ])('%s defaults to status %i', (code, status) => {
    const error = new AppError(code, 'm');
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
  });

  it('is an Error with its message, name and defaults', () => {
    const error = new AppError('NOT_FOUND', 'question not found');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('AppError');
    expect(error.message).toBe('question not found');
    expect(error.retryable).toBe(false);
    expect(error.details).toBeUndefined();
    expect(error.retryAfterSeconds).toBeUndefined();
  });

  it('takes status, retryable, details, retryAfterSeconds and cause from the options', () => {
    const cause = new Error('socket closed');
    const error = new AppError('RATE_LIMITED', 'slow down', {
      status: 503,
      retryable: true,
      details: { limit: 10 },
      retryAfterSeconds: 7,
      cause,
    });
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(true);
    expect(error.details).toEqual({ limit: 10 });
    expect(error.retryAfterSeconds).toBe(7);
    expect(error.cause).toBe(cause);
  });
});

describe('toPublicError', () => {
  it('maps an AppError to its status and body', () => {
    expect(toPublicError(new AppError('PAYLOAD_TOO_LARGE', 'body too large'))).toEqual({
      status: 413,
      body: { error: { code: 'PAYLOAD_TOO_LARGE', message: 'body too large' } },
    });
  });

  it('includes details only when present', () => {
    const withDetails = toPublicError(
      new AppError('INVALID_REQUEST', 'bad body', { details: [{ path: 'topK' }] }),
    );
    expect(withDetails).toEqual({
      status: 400,
      body: {
        error: { code: 'INVALID_REQUEST', message: 'bad body', details: [{ path: 'topK' }] },
      },
    });
    const without = toPublicError(new AppError('INVALID_REQUEST', 'bad body'));
    expect(without.body.error).not.toHaveProperty('details');
  });

  it('keeps an explicit status', () => {
    expect(toPublicError(new AppError('UNAVAILABLE', 'busy', { status: 500 })).status).toBe(500);
  });

  it('turns unknown errors into a generic 500 INTERNAL without leaking message or stack', () => {
    const secret = new Error('password=hunter2 at db.internal');
    const result = toPublicError(secret);
    expect(result).toEqual({
      status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error' } },
    });
    const text = JSON.stringify(result);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('at ');
  });

  it('treats thrown non-errors as internal too', () => {
    for (const value of ['boom', 42, null, undefined, { code: 'NOT_FOUND', message: 'x' }]) {
      expect(toPublicError(value)).toEqual({
        status: 500,
        body: { error: { code: 'INTERNAL', message: 'internal error' } },
      });
    }
  });
});

describe('toError', () => {
  it('returns errors unchanged', () => {
    const error = new AppError('CONFLICT', 'x');
    expect(toError(error)).toBe(error);
    const plain = new TypeError('t');
    expect(toError(plain)).toBe(plain);
  });

  it('wraps a string as the message', () => {
    const error = toError('went wrong');
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('went wrong');
  });

  it('wraps other values as their JSON', () => {
    expect(toError({ reason: 'x', n: 1 }).message).toBe('{"reason":"x","n":1}');
    expect(toError(42).message).toBe('42');
    expect(toError(null).message).toBe('null');
    // Values JSON cannot serialise still become an Error instead of throwing inside a catch.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(toError(circular)).toBeInstanceOf(Error);
    expect(toError(10n).message).toBe('10');
    expect(toError(undefined).message).toBe('undefined');
  });
});
