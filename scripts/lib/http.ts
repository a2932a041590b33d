// Small pieces the command-line clients share for talking to askq's HTTP API.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ErrorBodySchema, toError, withDeadline } from '@askq/shared';

const MAX_RETRY_AFTER_MS = 60_000;

/** The body parsed as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Retry-After in seconds or as an HTTP date (at most `maxMs`, a minute by default); exponential
 * backoff when absent.
 */
export function retryAfterMs(
  header: string | null,
  attempt: number,
  maxMs = MAX_RETRY_AFTER_MS,
): number {
  const fallback = 500 * 2 ** attempt;
  if (header === null || header.trim() === '') return fallback;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (Number.isNaN(ms)) return fallback;
  return Math.min(Math.max(ms, 0), maxMs);
}

/** fetch() hides the socket error (ECONNREFUSED, ENOTFOUND) in `cause`. */
export function networkReason(err: Error): string {
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err.message;
}

/** A reply of the API: its status and its body parsed as JSON (undefined when it is not JSON). */
export interface JsonReply {
  status: number;
  json: unknown;
}

/** No answer at all: the connection failed or timed out. `reason` is the socket error's code. */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${url}: ${reason}`, options);
    this.name = 'UnreachableError';
  }
}

/** Options of `requestJson()`. */
export interface JsonRequestOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Milliseconds one attempt may take, answer included (default 30 s). */
  timeoutMs?: number;
  /** How often a 429, 502, 503 or 504 is tried again (default 3), waiting as Retry-After says. */
  retries?: number;
  /** The longest Retry-After obeyed (default a minute). */
  maxRetryAfterMs?: number;
  /** Whether a failed connection is tried again too (within `retries`); by default it is not. */
  retryNetworkErrors?: boolean;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

// 429 and 503 come with Retry-After (SPEC 2, 7); 502/504 are proxies in front of a restarting API.
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * One JSON request, tried again on the statuses that say "later". A failed connection is an
 * UnreachableError; the caller's abort rejects with its reason.
 */
export async function requestJson(
  url: string,
  options: JsonRequestOptions = {},
): Promise<JsonReply> {
  const { method = 'GET', body, signal, retries = 3, timeoutMs = 30_000 } = options;
  const doFetch = options.fetch ?? fetch;
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    let text: string;
    try {
      // The deadline covers the body, which is read inside it.
      [response, text] = await withDeadline(timeoutMs, signal, async (bounded) => {
        const reply = await doFetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: bounded,
        });
        return [reply, await reply.text()] as const;
      });
    } catch (e) {
      signal?.throwIfAborted();
      const err = toError(e);
      if (!options.retryNetworkErrors || attempt >= retries) {
        throw new UnreachableError(url, networkReason(err), { cause: err });
      }
      await sleep(250 * 2 ** attempt, undefined, { signal });
      continue;
    }
    if (RETRY_STATUSES.has(response.status) && attempt < retries) {
      const waitMs = retryAfterMs(
        response.headers.get('retry-after'),
        attempt,
        options.maxRetryAfterMs,
      );
      await sleep(waitMs, undefined, { signal });
      continue;
    }
    return { status: response.status, json: parseJson(text) };
  }
}

const ErrorDetail = z.object({
  path: z.union([z.string(), z.array(z.union([z.string(), z.number()]))]),
  message: z.string(),
});

/** askq's error body (SPEC 2) read from a reply: `code`, `message` and each detail as `path: problem`. */
export function apiErrorOf(
  json: unknown,
): { code: string; message: string; details: string[] } | undefined {
  const parsed = ErrorBodySchema.safeParse(json);
  if (!parsed.success) return undefined;
  const { code, message, details } = parsed.data.error;
  const problems = (Array.isArray(details) ? details : []).flatMap((d) => {
    const detail = ErrorDetail.safeParse(d);
    if (!detail.success) return [];
    const path = Array.isArray(detail.data.path) ? detail.data.path.join('.') : detail.data.path;
    return [`${path}: ${detail.data.message}`];
  });
  return { code, message, details: problems };
}
