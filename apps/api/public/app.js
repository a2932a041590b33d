// askq demo page: plain ES module, no framework, no build step.
// Talks to the HTTP API of the same origin: POST /v1/questions, GET /v1/questions/{id}/events (read
// with fetch so that it can carry the API key, and resumed with Last-Event-ID after a network
// error), DELETE /v1/questions/{id}, GET /v1/collections.
// Once an answer completes, the next question is a follow-up: its POST names the last completed
// question as previousQuestionId, and askq answers it in the light of the earlier turns.

const KEY_STORAGE = 'askq.apiKey';
const STAGES = ['retrieval', 'generation', 'validation'];
/** Consecutive failed connections before the page stops trying to resume a stream. */
const MAX_RECONNECTS = 30;
const EXCERPT_CHARS = 280;
// A `[2]` in an earlier turn named that turn's sources, which the page no longer shows.
const CITATION = /\s?\[\d{1,3}\]/g;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
};

const form = /** @type {HTMLFormElement} */ ($('ask-form'));
const questionInput = /** @type {HTMLTextAreaElement} */ ($('question'));
const collectionInput = /** @type {HTMLInputElement} */ ($('collection'));
const modelSelect = /** @type {HTMLSelectElement} */ ($('model'));
const topKInput = /** @type {HTMLInputElement} */ ($('topK'));
const cacheInput = /** @type {HTMLInputElement} */ ($('cache'));
const keyInput = /** @type {HTMLInputElement} */ ($('api-key'));
const authDetails = /** @type {HTMLDetailsElement} */ ($('auth-details'));
const cancelButton = /** @type {HTMLButtonElement} */ ($('cancel-button'));
const askButton = /** @type {HTMLButtonElement} */ ($('ask-button'));
const answerEl = $('answer');
const statusLine = $('status-line');
const errorBox = $('error');
const conversationEl = $('conversation');
const turnsEl = $('turns');
const newConversationButton = /** @type {HTMLButtonElement} */ ($('new-conversation'));

/**
 * The question being followed. Every callback checks that its run is still the current one, so a
 * new question simply replaces the old run (whose stream is aborted, not the question itself).
 * @type {Run | undefined}
 */
let current;

/**
 * The completed turns of the conversation the next question continues, oldest first; empty when
 * it stands alone. Only its last id goes to the API, which keeps the earlier turns itself.
 * @type {Turn[]}
 */
let conversation = [];

/**
 * @typedef {object} Turn
 * @property {string} id
 * @property {string} question
 * @property {string} answer
 */

/**
 * @typedef {object} Run
 * @property {string | undefined} id
 * @property {string} question
 * @property {string | undefined} previousQuestionId the turn it follows up, if any
 * @property {string | undefined} eventsUrl
 * @property {AbortController} controller
 * @property {string | undefined} lastEventId
 * @property {boolean} done
 * @property {number} reconnects
 * @property {number} retryMs
 * @property {string} answer
 * @property {Record<string, number>} stageStarted
 * @property {number | undefined} ticker
 */

// ---------------------------------------------------------------------------------------------
// API access

function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return keyInput.value.trim();
  }
}

function saveKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage may be disabled; the field's value is used directly then.
  }
  $('auth-state').textContent = value ? '(set for this tab)' : '(none)';
}

/** Request headers with the API key, when one is set. */
function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : { ...extra };
}

/** The error of a response in the API's shape, or one made up from its status. */
async function readError(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.code) return body.error;
  } catch {
    // Not JSON: a proxy or a network layer answered.
  }
  return { code: `HTTP_${res.status}`, message: res.statusText || 'the request failed' };
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve(undefined)), {
      once: true,
    });
  });

// ---------------------------------------------------------------------------------------------
// Server-Sent Events over fetch

/**
 * Reads an event stream body and calls onEvent for each complete event (the SSE grammar: fields
 * id, event, data, retry; comments start with ':'; events end at a blank line). Resolves when the
 * body ends, rejects when the connection breaks.
 */
async function readEventStream(body, onEvent, onRetry, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal.addEventListener('abort', stop, { once: true });
  let buffer = '';
  let id;
  let event = '';
  let data = [];
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent({ id, event: event || 'message', data: data.join('\n') });
      id = undefined;
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const ch = buffer[i];
        if (ch !== '\n' && ch !== '\r') continue;
        // A CR at the very end may be the first half of CRLF: wait for the next chunk.
        if (ch === '\r' && i === buffer.length - 1) break;
        line(buffer.slice(start, i));
        if (ch === '\r' && buffer[i + 1] === '\n') i++;
        start = i + 1;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Follows a question's event stream until its terminal event. After a network error or a stream
 * that ends early it reconnects with Last-Event-ID after a short backoff, so nothing is lost or
 * repeated. Stops on 204 (finished), 4xx and terminal events.
 * @param {Run} run
 */
async function follow(run) {
  const { signal } = run.controller;
  let failures = 0;
  while (!run.done && !signal.aborted) {
    if (failures > 0) {
      if (failures > MAX_RECONNECTS) {
        fail(run, {
          code: 'CONNECTION_LOST',
          message: `could not reach the event stream after ${MAX_RECONNECTS} tries`,
        });
        return;
      }
      const wait = Math.min(250 * 2 ** (failures - 1), run.retryMs);
      setConnection(run, `lost — reconnecting in ${wait} ms (try ${failures})`);
      await sleep(wait, signal);
      if (signal.aborted) return;
    }
    const requestHeaders = headers({ accept: 'text/event-stream' });
    if (run.lastEventId) requestHeaders['last-event-id'] = run.lastEventId;
    let res;
    try {
      res = await fetch(run.eventsUrl, { headers: requestHeaders, cache: 'no-store', signal });
    } catch {
      if (signal.aborted) return;
      failures++;
      continue;
    }
    if (res.status === 204) {
      // Finished and nothing after our last event: read the outcome from the question itself.
      await settleFromView(run);
      return;
    }
    if (!res.ok || !res.body) {
      const error = await readError(res);
      if (res.status >= 500 || res.status === 429) {
        failures++;
        continue;
      }
      fail(run, error);
      return;
    }
    if (run.lastEventId) run.reconnects++;
    setConnection(run, 'streaming');
    try {
      await readEventStream(
        res.body,
        (event) => {
          failures = 0;
          handleEvent(run, event);
        },
        (ms) => (run.retryMs = Math.max(250, Math.min(ms, 5000))),
        signal,
      );
    } catch {
      // The connection broke mid-stream; resume below.
    }
    if (run.done || signal.aborted) return;
    failures++;
  }
}

/** Reads GET /v1/questions/{id} when the stream has nothing more to say. */
async function settleFromView(run) {
  try {
    const res = await fetch(`/v1/questions/${encodeURIComponent(run.id)}`, { headers: headers() });
    if (!res.ok) {
      fail(run, await readError(res));
      return;
    }
    const view = await res.json();
    if (view.status === 'completed' && view.result) {
      renderResult(run, view.result);
      finish(run, 'completed', view.result);
    } else if (view.status === 'failed') {
      fail(run, view.error ?? { code: 'FAILED', message: 'the question failed' });
    } else if (view.status === 'cancelled') {
      finish(run, 'cancelled');
    }
  } catch {
    fail(run, { code: 'CONNECTION_LOST', message: 'could not read the question' });
  }
}

// ---------------------------------------------------------------------------------------------
// Events

/** @param {Run} run */
function handleEvent(run, { id, event, data }) {
  if (run !== current || run.done) return;
  if (id) {
    run.lastEventId = id;
    setConnection(run, 'streaming');
  }
  let payload;
  try {
    payload = JSON.parse(data) ?? {};
  } catch {
    return;
  }
  switch (event) {
    case 'status':
      setAttempt(payload.attempt);
      setStatus(
        payload.status === 'queued' ? 'queued' : 'active',
        payload.status === 'queued' ? 'Queued, waiting for a worker…' : 'Running…',
      );
      break;
    case 'stage':
      setStage(run, payload.stage, payload.state, payload.ms);
      break;
    case 'sources':
      renderSources(payload.sources ?? []);
      break;
    case 'token':
      appendToken(run, String(payload.text ?? ''));
      break;
    case 'retry':
      onRetry(run, payload);
      break;
    case 'completed':
      renderResult(run, payload.result);
      finish(run, 'completed', payload.result);
      break;
    case 'failed':
      fail(run, payload.error ?? { code: 'FAILED', message: 'the question failed' });
      break;
    case 'cancelled':
      finish(run, 'cancelled');
      break;
    default:
      break;
  }
}

function onRetry(run, { attempt, reason }) {
  setAttempt(attempt);
  run.answer = '';
  answerEl.replaceChildren(placeholder('Waiting for the new answer…'));
  const escalation = reason === 'escalation';
  addNotice(
    escalation
      ? `The fast answer did not pass validation; the smart model writes it again (attempt ${attempt}).`
      : `Attempt ${attempt - 1} failed (${reason}); the answer so far was discarded and attempt ${attempt} follows.`,
  );
  for (const stage of STAGES) {
    if (escalation && stage === 'retrieval') continue;
    setStage(run, stage, 'pending');
  }
  setStatus('queued', escalation ? 'Regenerating with the smart model…' : 'Retrying…');
}

// ---------------------------------------------------------------------------------------------
// Rendering

function setStatus(status, text) {
  statusLine.dataset.status = status;
  $('status-text').textContent = text;
}

function setAttempt(attempt) {
  $('attempt').textContent = attempt ? String(attempt) : '—';
}

function setConnection(run, text) {
  if (run !== current) return;
  const resumed = run.reconnects > 0 ? ` · resumed ${run.reconnects}×` : '';
  $('connection').textContent = `${text}${resumed}`;
}

const formatMs = (ms) => `${Math.round(ms)} ms`;

/** @param {Run} run */
function setStage(run, stage, state, ms) {
  const li = document.querySelector(`#stages li[data-stage="${CSS.escape(String(stage))}"]`);
  if (!li) return;
  li.dataset.state = state;
  li.querySelector('.stage-state').textContent = state;
  const msEl = li.querySelector('.stage-ms');
  if (state === 'started') {
    run.stageStarted[stage] = performance.now();
    msEl.textContent = '0 ms…';
    startTicker(run);
  } else {
    delete run.stageStarted[stage];
    msEl.textContent = typeof ms === 'number' ? formatMs(ms) : '';
  }
  if (stage === 'generation') answerEl.setAttribute('aria-busy', String(state === 'started'));
}

/** Ticks the elapsed time of running stages until the server reports their real duration. */
function startTicker(run) {
  if (run.ticker !== undefined) return;
  run.ticker = window.setInterval(() => {
    const now = performance.now();
    for (const [stage, started] of Object.entries(run.stageStarted)) {
      const msEl = document.querySelector(`#stages li[data-stage="${stage}"] .stage-ms`);
      if (msEl) msEl.textContent = `${formatMs(now - started)}…`;
    }
  }, 100);
}

function stopTicker(run) {
  if (run.ticker !== undefined) window.clearInterval(run.ticker);
  run.ticker = undefined;
  run.stageStarted = {};
}

function appendToken(run, text) {
  if (run.answer === '') answerEl.replaceChildren();
  run.answer += text;
  const last = answerEl.lastChild;
  if (last && last.nodeType === Node.TEXT_NODE) last.appendData(text);
  else answerEl.append(text);
}

/** The answer with its [n] citations linked to the sources they name. */
function renderAnswer(answer, sourceCount) {
  const nodes = [];
  let at = 0;
  for (const match of answer.matchAll(/\[(\d+)\]/g)) {
    const n = Number(match[1]);
    if (n < 1 || n > sourceCount) continue;
    nodes.push(answer.slice(at, match.index));
    const link = document.createElement('a');
    link.href = `#source-${n}`;
    link.className = 'cite';
    link.textContent = match[0];
    link.setAttribute('aria-label', `source ${n}`);
    nodes.push(link);
    at = match.index + match[0].length;
  }
  nodes.push(answer.slice(at));
  answerEl.replaceChildren(...nodes);
}

/** The passage as one line of prose: Markdown heading lines (the title, usually) left out. */
function excerptOf(text) {
  const prose = text
    .replace(/^#{1,6}\s.*$/gm, '')
    .replace(/\s+/g, ' ')
    .trim();
  const flat = prose || text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS).trimEnd()}…` : flat;
}

function renderSources(sources) {
  const list = $('sources');
  list.replaceChildren(
    ...sources.map((source, i) => {
      const li = document.createElement('li');
      li.id = `source-${i + 1}`;
      li.className = 'source';
      li.tabIndex = -1;

      const head = document.createElement('div');
      head.className = 'source-head';
      const title = document.createElement('span');
      title.className = 'source-title';
      title.textContent = `[${i + 1}] ${source.title || source.documentId}`;
      const score = document.createElement('span');
      score.className = 'score';
      const value = Number(source.score);
      score.textContent = `score ${Number.isFinite(value) ? value.toFixed(2) : '—'}`;
      const bar = document.createElement('span');
      bar.className = 'score-bar';
      bar.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.style.width = `${Math.round(Math.max(0, Math.min(1, value || 0)) * 100)}%`;
      bar.append(fill);
      head.append(title, score, bar);

      const id = document.createElement('code');
      id.className = 'source-id';
      id.textContent = source.chunkId || source.documentId;

      const excerpt = document.createElement('p');
      excerpt.className = 'excerpt';
      const text = excerptOf(String(source.text ?? ''));
      excerpt.textContent = text;

      li.append(head, id, excerpt);
      return li;
    }),
  );
  $('sources-empty').hidden = sources.length > 0;
  if (sources.length === 0) $('sources-empty').textContent = 'No passage matched.';
}

function renderChecks(validation) {
  const checks = validation?.checks ?? [];
  const failed = checks.filter((c) => !c.passed).length;
  const summary = $('validation-summary');
  summary.className = validation?.passed ? 'pass' : 'fail';
  summary.textContent =
    checks.length === 0
      ? validation?.passed
        ? 'Passed.'
        : 'Not validated.'
      : failed === 0
        ? `All ${checks.length} checks passed.`
        : `${failed} of ${checks.length} checks failed.`;
  $('checks').replaceChildren(
    ...checks.map((check) => {
      const li = document.createElement('li');
      li.className = check.passed ? 'check pass' : 'check fail';
      const mark = document.createElement('span');
      mark.className = 'check-mark';
      mark.setAttribute('aria-hidden', 'true');
      mark.textContent = check.passed ? '✓' : '✗';
      const name = document.createElement('span');
      name.className = 'check-name';
      name.textContent = check.name;
      const verdict = document.createElement('span');
      verdict.className = 'check-verdict';
      verdict.textContent = check.passed ? 'pass' : 'fail';
      li.append(mark, name, verdict);
      if (check.detail) {
        const detail = document.createElement('span');
        detail.className = 'check-detail';
        detail.textContent = check.detail;
        li.append(detail);
      }
      return li;
    }),
  );
}

function renderResult(run, result) {
  if (!result) return;
  const sources = result.sources ?? [];
  renderSources(sources);
  renderAnswer(String(result.answer ?? ''), sources.length);
  run.answer = String(result.answer ?? '');
  renderChecks(result.validation);
  const timings = result.timings ?? {};
  const usage = result.usage;
  const fields = {
    model: result.model ?? '—',
    route: result.route ?? '—',
    cached: result.cached ? 'yes' : 'no',
    usage: usage ? `${usage.promptTokens} / ${usage.completionTokens}` : '—',
  };
  for (const key of ['queueMs', 'retrievalMs', 'generationMs', 'validationMs', 'totalMs']) {
    fields[key] = typeof timings[key] === 'number' ? formatMs(timings[key]) : '—';
  }
  for (const [key, value] of Object.entries(fields)) {
    const dd = document.querySelector(`#result [data-field="${key}"]`);
    if (dd) dd.textContent = value;
  }
  // Stage timings from the result, for a cached answer or a resume that missed the stage events.
  for (const stage of STAGES) {
    const li = document.querySelector(`#stages li[data-stage="${stage}"]`);
    const ms = timings[`${stage}Ms`];
    if (li && li.dataset.state !== 'completed') {
      setStage(run, stage, result.cached && typeof ms !== 'number' ? 'cached' : 'completed', ms);
    }
  }
}

function addNotice(text) {
  const li = document.createElement('li');
  li.textContent = text;
  $('notices').append(li);
}

function showError(error) {
  const strong = document.createElement('strong');
  strong.textContent = error.code ?? 'ERROR';
  const parts = [strong, ` ${error.message ?? ''}`];
  if (Array.isArray(error.details) && error.details.length > 0) {
    const list = document.createElement('ul');
    for (const detail of error.details) {
      const li = document.createElement('li');
      li.textContent = detail.path ? `${detail.path}: ${detail.message}` : String(detail.message);
      list.append(li);
    }
    parts.push(list);
  }
  errorBox.replaceChildren(...parts);
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
  for (const input of [questionInput, collectionInput, topKInput, keyInput]) {
    input.removeAttribute('aria-invalid');
  }
}

/** @param {Run} run */
function resetView(run) {
  clearError();
  setStatus('submitting', 'Sending the question…');
  $('asked-kind').textContent = run.previousQuestionId ? 'Follow-up' : 'Question';
  $('asked-text').textContent = run.question;
  $('asked').hidden = false;
  setAttempt(undefined);
  $('question-id').textContent = '—';
  $('connection').textContent = '—';
  for (const li of document.querySelectorAll('#stages li')) {
    li.dataset.state = 'pending';
    li.querySelector('.stage-state').textContent = 'pending';
    li.querySelector('.stage-ms').textContent = '';
  }
  $('notices').replaceChildren();
  answerEl.replaceChildren(placeholder('Waiting for the answer…'));
  answerEl.setAttribute('aria-busy', 'false');
  $('sources').replaceChildren();
  $('sources-empty').hidden = false;
  $('sources-empty').textContent = 'No sources yet.';
  const summary = $('validation-summary');
  summary.className = 'muted';
  summary.textContent = 'Not validated yet.';
  $('checks').replaceChildren();
  for (const dd of document.querySelectorAll('#result dd')) dd.textContent = '—';
}

/** Ends a run: stops its stream and ticker and shows the outcome. */
function finish(run, outcome, result) {
  if (run.done) return;
  run.done = true;
  stopTicker(run);
  run.controller.abort();
  if (run !== current) return;
  for (const li of document.querySelectorAll('#stages li')) {
    if (li.dataset.state === 'started') {
      const state = outcome === 'cancelled' ? 'cancelled' : 'failed';
      li.dataset.state = state;
      li.querySelector('.stage-state').textContent = state;
      // The time it ran before it was stopped, as measured here.
      const msEl = li.querySelector('.stage-ms');
      msEl.textContent = msEl.textContent.replace('…', '');
    }
  }
  answerEl.setAttribute('aria-busy', 'false');
  setConnection(run, 'closed');
  if (outcome === 'completed') {
    addTurn(run, result);
    const total = result?.timings?.totalMs;
    setStatus(
      'completed',
      result?.cached
        ? 'Completed — answered from the cache.'
        : `Completed${typeof total === 'number' ? ` in ${formatMs(total)}` : ''}.`,
    );
  } else if (outcome === 'cancelled') {
    setStatus('cancelled', 'Cancelled.');
    if (run.answer === '') answerEl.replaceChildren(placeholder('Cancelled before any answer.'));
  } else {
    setStatus('failed', 'Failed.');
    if (run.answer === '') answerEl.replaceChildren(placeholder('No answer.'));
  }
  setCancelEnabled(false);
}

function fail(run, error) {
  if (run !== current) {
    run.done = true;
    return;
  }
  showError(error);
  finish(run, 'failed');
}

function placeholder(text) {
  const p = document.createElement('p');
  p.className = 'muted placeholder';
  p.textContent = text;
  return p;
}

function setCancelEnabled(enabled) {
  // A disabled button cannot keep the focus: hand it to the Ask button instead of losing it.
  if (!enabled && document.activeElement === cancelButton) askButton.focus();
  cancelButton.disabled = !enabled;
}

// ---------------------------------------------------------------------------------------------
// Conversation

/** Adds a completed run to the conversation, unless the conversation moved on while it ran. */
function addTurn(run, result) {
  if (!run.id) return;
  // "New conversation" (or another follow-up's completion) while it ran: it no longer follows on.
  if (run.previousQuestionId !== conversation.at(-1)?.id) return;
  conversation.push({
    id: run.id,
    question: run.question,
    answer: String(result?.answer ?? run.answer),
  });
  renderConversation();
}

function renderConversation() {
  turnsEl.replaceChildren(
    ...conversation.map((turn) => {
      const li = document.createElement('li');
      li.className = 'turn';
      li.dataset.questionId = turn.id;
      li.append(
        turnLine('turn-question', 'You', turn.question),
        turnLine('turn-answer', 'askq', turn.answer.replace(CITATION, '')),
      );
      return li;
    }),
  );
  const active = conversation.length > 0;
  conversationEl.hidden = !active;
  // The newest turn is the one the next question follows: keep it in view.
  turnsEl.scrollTop = turnsEl.scrollHeight;
  setMode(
    active
      ? 'Your next question follows up on the conversation above.'
      : 'New conversation: your next question stands alone.',
  );
}

function turnLine(className, who, text) {
  const p = document.createElement('p');
  p.className = className;
  const speaker = document.createElement('span');
  speaker.className = 'who';
  speaker.textContent = who;
  p.append(speaker, ` ${text}`);
  return p;
}

/** Says, next to the question field (and to screen readers), whether it continues the thread. */
function setMode(text) {
  const mode = $('question-mode');
  // Rewriting the same words would be announced again by some screen readers.
  if (mode.textContent !== text) mode.textContent = text;
}

function newConversation() {
  conversation = [];
  renderConversation();
  // The button just pressed is hidden now: hand the focus to where the next question is written.
  questionInput.focus();
}

// ---------------------------------------------------------------------------------------------
// Actions

function invalid(input, code, message) {
  showError({ code, message });
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

async function ask(event) {
  event.preventDefault();
  clearError();
  const question = questionInput.value.trim();
  const collection = collectionInput.value.trim() || 'default';
  const topK = Number(topKInput.value || 4);
  if (!question) {
    invalid(questionInput, 'INVALID_REQUEST', 'write a question first');
    return;
  }
  if (!Number.isInteger(topK) || topK < 1 || topK > 20) {
    invalid(
      topKInput,
      'INVALID_REQUEST',
      'the number of sources must be a whole number from 1 to 20',
    );
    return;
  }

  if (current && !current.done) {
    // Only stop following the previous question; it keeps running on the server.
    current.done = true;
    stopTicker(current);
    current.controller.abort();
  }
  /** @type {Run} */
  const run = {
    id: undefined,
    question,
    previousQuestionId: conversation.at(-1)?.id,
    eventsUrl: undefined,
    controller: new AbortController(),
    lastEventId: undefined,
    done: false,
    reconnects: 0,
    retryMs: 2000,
    answer: '',
    stageStarted: {},
    ticker: undefined,
  };
  current = run;
  resetView(run);
  setCancelEnabled(false);

  let res;
  try {
    res = await fetch('/v1/questions', {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({
        question,
        collection,
        model: modelSelect.value,
        topK,
        cache: cacheInput.checked,
        ...(run.previousQuestionId ? { previousQuestionId: run.previousQuestionId } : {}),
      }),
      signal: run.controller.signal,
    });
  } catch {
    if (run !== current) return;
    fail(run, { code: 'NETWORK_ERROR', message: 'could not reach askq' });
    return;
  }
  if (run !== current) return;
  if (res.status !== 200 && res.status !== 202) {
    const error = await readError(res);
    if (res.status === 401) {
      authDetails.open = true;
      keyInput.setAttribute('aria-invalid', 'true');
    }
    if (run.previousQuestionId && (res.status === 404 || res.status === 409)) {
      // Expired, or not finished after all: the conversation cannot go on from that turn.
      addNotice(
        'The earlier answer cannot be followed up. Press “New conversation” to ask this on its own.',
      );
    }
    fail(run, error);
    return;
  }
  let body;
  try {
    body = await res.json();
  } catch {
    fail(run, { code: 'NETWORK_ERROR', message: 'the answer to the question was cut short' });
    return;
  }
  run.id = body.id;
  // Accepted: like a chat box, the field is ready for the next message (it is shown above the
  // answer). A refused question stays in the field to be corrected.
  if (questionInput.value.trim() === question) questionInput.value = '';
  run.eventsUrl = body.links?.events ?? `/v1/questions/${encodeURIComponent(body.id)}/events`;
  $('question-id').textContent = body.id;

  if (res.status === 200 && body.result) {
    // Answered from the exact cache: the result is here already.
    renderResult(run, body.result);
    finish(run, 'completed', body.result);
    return;
  }
  if (body.coalesced) {
    addNotice('An identical question is already running: following it instead of asking again.');
  }
  setStatus('queued', 'Queued, waiting for a worker…');
  setCancelEnabled(true);
  await follow(run);
}

async function cancel() {
  const run = current;
  if (!run || run.done || !run.id) return;
  cancelButton.disabled = true;
  askButton.focus();
  setStatus('cancelling', 'Cancelling…');
  let res;
  try {
    res = await fetch(`/v1/questions/${encodeURIComponent(run.id)}`, {
      method: 'DELETE',
      headers: headers(),
    });
  } catch {
    showError({ code: 'NETWORK_ERROR', message: 'could not send the cancel; try again' });
    setCancelEnabled(!run.done);
    return;
  }
  if (run.done || run !== current) return;
  if (res.status === 409) {
    addNotice('It had already finished: nothing to cancel.');
  } else if (!res.ok) {
    showError(await readError(res));
    setCancelEnabled(true);
  }
  // 200 (queued) and 202 (running): the stream delivers `cancelled`.
}

async function loadCollections() {
  const hint = $('collection-hint');
  const list = $('collection-list');
  try {
    const res = await fetch('/v1/collections', { headers: headers() });
    if (res.status === 401) {
      list.replaceChildren();
      hint.textContent = apiKey()
        ? 'The API key was refused: check it below.'
        : 'askq needs an API key: enter it below to list collections.';
      authDetails.open = true;
      return;
    }
    if (!res.ok) {
      const error = await readError(res);
      hint.textContent = `Could not list collections (${error.code}); type a name.`;
      return;
    }
    const { collections = [] } = await res.json();
    list.replaceChildren(
      ...collections.map((c) => {
        const option = document.createElement('option');
        option.value = c.name;
        option.label = `${c.name} — ${c.documents} documents`;
        return option;
      }),
    );
    hint.textContent =
      collections.length === 0
        ? 'No collections yet; "default" is used.'
        : `${collections.length} ${collections.length === 1 ? 'collection' : 'collections'}: ${collections
            .map((c) => `${c.name} (${c.documents} documents)`)
            .join(', ')}.`;
  } catch {
    hint.textContent = 'Could not list collections; type a name.';
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

form.addEventListener('submit', (event) => void ask(event));
cancelButton.addEventListener('click', () => void cancel());
newConversationButton.addEventListener('click', newConversation);
questionInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

// The markup's whitespace around the placeholder would show in the pre-wrapped answer box.
answerEl.replaceChildren(placeholder('The answer appears here as it is written.'));

let keyTimer;
keyInput.value = apiKey();
saveKey(keyInput.value);
if (keyInput.value) authDetails.open = false;
keyInput.addEventListener('input', () => {
  keyInput.removeAttribute('aria-invalid');
  saveKey(keyInput.value.trim());
  clearTimeout(keyTimer);
  keyTimer = setTimeout(() => void loadCollections(), 300);
});
$('forget-key').addEventListener('click', () => {
  keyInput.value = '';
  saveKey('');
  keyInput.focus();
  void loadCollections();
});

void loadCollections();
