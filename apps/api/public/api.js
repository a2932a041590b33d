// HTTP calls to the askq API of the same origin, and the API key they carry.
// Each call returns the fetch Response (and rejects on a network error) and leaves what its status
// means to the caller: a 404 means one thing for a follow-up and another for a cancel, and only the
// caller knows whether the run it belongs to is still the one on screen.

const KEY_STORAGE = 'askq.apiKey';

/** @param {string} id */
const questionUrl = (id) => `/v1/questions/${encodeURIComponent(id)}`;

// The key as last saved, for when sessionStorage is unavailable (disabled, or a sandboxed frame):
// the page still works then, it just forgets the key on reload.
let keyInMemory = '';

/** The API key for this tab, or '' when none is set. */
export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return keyInMemory;
  }
}

/**
 * Keeps the key for this tab only: sessionStorage, not localStorage, so closing the tab forgets it.
 * @param {string} value the key, or '' to forget it
 */
export function saveKey(value) {
  keyInMemory = value;
  try {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage may be disabled; the key in memory is used then.
  }
}

/**
 * Request headers with the API key, when one is set. Read on every request, not once, because the
 * key can be typed or forgotten while a stream is being followed.
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
export function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : { ...extra };
}

/**
 * The error of a response in the API's shape, or one made up from its status.
 * @param {Response} res
 * @returns {Promise<{ code: string, message: string, details?: Array<{ path?: string, message: string }> }>}
 */
export async function readError(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.code) return body.error;
  } catch {
    // Not JSON: a proxy or a network layer answered.
  }
  return { code: `HTTP_${res.status}`, message: res.statusText || 'the request failed' };
}

/**
 * POST /v1/questions. Aborting the signal only stops waiting for the answer to the POST.
 * @param {Record<string, unknown>} request the body: question, collection, model, topK, cache,
 *   previousQuestionId
 * @param {AbortSignal} signal
 */
export function postQuestion(request, signal) {
  return fetch('/v1/questions', {
    method: 'POST',
    headers: headers({ 'content-type': 'application/json' }),
    body: JSON.stringify(request),
    signal,
  });
}

/**
 * GET /v1/questions/{id}: the question's status and, once finished, its result or error.
 * @param {string} id
 */
export function getQuestion(id) {
  return fetch(questionUrl(id), { headers: headers() });
}

/**
 * DELETE /v1/questions/{id}: 200 when it was queued, 202 when running (the stream then delivers
 * `cancelled`), 409 when it had already finished.
 * @param {string} id
 */
export function cancelQuestion(id) {
  return fetch(questionUrl(id), { method: 'DELETE', headers: headers() });
}

/** GET /v1/collections. */
export function getCollections() {
  return fetch('/v1/collections', { headers: headers() });
}

/**
 * Where a question's event stream is, when the POST's answer did not link it.
 * @param {string} id
 */
export function eventsUrl(id) {
  return `${questionUrl(id)}/events`;
}
