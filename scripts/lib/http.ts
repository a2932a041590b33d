// Small pieces the command-line clients share for talking to askq's HTTP API.

const MAX_RETRY_AFTER_MS = 60_000;

/** The body parsed as JSON, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Retry-After in seconds or as an HTTP date (at most a minute); exponential backoff when absent. */
export function retryAfterMs(header: string | null, attempt: number): number {
  const fallback = 500 * 2 ** attempt;
  if (header === null || header.trim() === '') return fallback;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (Number.isNaN(ms)) return fallback;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** fetch() hides the socket error (ECONNREFUSED, ENOTFOUND) in `cause`. */
export function networkReason(err: Error): string {
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err.message;
}
