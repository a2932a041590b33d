// The commands' requests to askq, through scripts/lib/http.ts: a failed connection names
// ASKQ_URL, a refused request quotes askq's error body, a reply is read with the API's schema.
import type { ZodType } from 'zod';
import { apiErrorOf, requestJson, UnreachableError, type JsonReply } from '../lib/http.js';
import { CliError } from './cli.js';
import { startHint, type Target } from './target.js';

/** "cannot reach askq at …", exit 2, naming ASKQ_URL. */
export const unreachable = (target: Target, reason: string, cause?: unknown) =>
  new CliError(2, `cannot reach askq at ${target.url}: ${reason}\n${startHint(target)}`, {
    cause,
  });

/**
 * One JSON request to the API; 429/502/503/504 are tried 3 more times (Retry-After, at most 10 s).
 * A failed connection is a CliError naming ASKQ_URL; an abort rejects with the signal's reason.
 */
export async function call(
  target: Target,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { body?: unknown; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<JsonReply> {
  try {
    return await requestJson(target.url + path, {
      method,
      headers: target.headers,
      body: options.body,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      retries: 3,
      maxRetryAfterMs: 10_000,
    });
  } catch (e) {
    if (e instanceof UnreachableError) throw unreachable(target, e.reason, e);
    throw e;
  }
}

/** A refused or failed request as a CliError: the API's `code: message` and every detail path. */
export function apiError(target: Target, reply: JsonReply, what: string): CliError {
  const error = apiErrorOf(reply.json);
  const text = error
    ? [`${error.code}: ${error.message}`, ...error.details.map((d) => `  ${d}`)].join('\n')
    : `HTTP ${reply.status}${reply.json === undefined ? '' : ` ${JSON.stringify(reply.json)}`}`;
  if (reply.status === 401 || reply.status === 403) {
    const fix = target.apiKey
      ? "ASKQ_API_KEY is not one of the server's API_KEYS."
      : "askq requires a key: set ASKQ_API_KEY to one of the server's API_KEYS.";
    return new CliError(2, `${what} was refused: ${text}\n${fix}`);
  }
  return new CliError(2, `${what} answered ${reply.status}: ${text}`);
}

/** What askq sent, as the API's schema reads it; anything else is a CliError (exit 2). */
export function readReply<T>(target: Target, schema: ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || 'the body'}: ${issue.message}`);
  throw new CliError(
    2,
    `${what}: askq's reply is not what the CLI expects (${problems.join('; ')}).\nIs ASKQ_URL (${target.url}) an askq of this version?`,
  );
}
