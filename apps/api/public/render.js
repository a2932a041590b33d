// DOM rendering of a question's progress: status, stages, the answer as it streams, notices and
// errors (result.js renders the finished result, conversation.js the turns). main.js decides what
// to show and when; these modules only turn it into elements. Text goes in with textContent, never
// innerHTML: answers and passages are model and user text.

import {
  $,
  answerEl,
  askButton,
  cancelButton,
  collectionInput,
  keyInput,
  questionInput,
  topKInput,
} from './dom.js';

/** The pipeline's stages, in the order #stages lists them. */
export const STAGES = ['retrieval', 'generation', 'validation'];

/** @param {number} ms */
export const formatMs = (ms) => `${Math.round(ms)} ms`;

const statusLine = $('status-line');
const errorBox = $('error');

/**
 * Says what the question is doing. `status` is the line's data-status, which the CSS colours (and
 * the tests wait for); `text` is what it reads.
 * @param {string} status
 * @param {string} text
 */
export function setStatus(status, text) {
  statusLine.dataset.status = status;
  $('status-text').textContent = text;
}

/** @param {number | undefined} attempt */
export function setAttempt(attempt) {
  $('attempt').textContent = attempt ? String(attempt) : '—';
}

/**
 * @param {string} text the connection's state
 * @param {number} resumes how many times the stream was resumed, shown so a blip is visible
 */
export function showConnection(text, resumes) {
  const resumed = resumes > 0 ? ` · resumed ${resumes}×` : '';
  $('connection').textContent = `${text}${resumed}`;
}

/**
 * Ticks the elapsed time of running stages until the server reports their real duration. One
 * per run, so stopping a superseded run's clock can never freeze the stages of the new one.
 */
export class StageClock {
  /** @type {Record<string, number>} when each running stage started, from performance.now() */
  started = {};
  /** @type {number | undefined} */
  ticker = undefined;

  /** @param {string} stage */
  start(stage) {
    this.started[stage] = performance.now();
    if (this.ticker !== undefined) return;
    this.ticker = window.setInterval(() => {
      const now = performance.now();
      for (const [name, started] of Object.entries(this.started)) {
        const msEl = document.querySelector(`#stages li[data-stage="${name}"] .stage-ms`);
        if (msEl) msEl.textContent = `${formatMs(now - started)}…`;
      }
    }, 100);
  }

  /** @param {string} stage */
  stop(stage) {
    delete this.started[stage];
  }

  stopAll() {
    if (this.ticker !== undefined) window.clearInterval(this.ticker);
    this.ticker = undefined;
    this.started = {};
  }
}

/**
 * @param {StageClock} clock the run's clock
 * @param {string} stage
 * @param {string} state pending, started, completed, cached, failed or cancelled
 * @param {number} [ms] the server's duration for it, when finished
 */
export function setStage(clock, stage, state, ms) {
  const li = document.querySelector(`#stages li[data-stage="${CSS.escape(String(stage))}"]`);
  if (!li) return;
  li.dataset.state = state;
  li.querySelector('.stage-state').textContent = state;
  const msEl = li.querySelector('.stage-ms');
  if (state === 'started') {
    clock.start(stage);
    msEl.textContent = '0 ms…';
  } else {
    clock.stop(stage);
    msEl.textContent = typeof ms === 'number' ? formatMs(ms) : '';
  }
  if (stage === 'generation') answerEl.setAttribute('aria-busy', String(state === 'started'));
}

/** @param {string} text */
export function placeholder(text) {
  const p = document.createElement('p');
  p.className = 'muted placeholder';
  p.textContent = text;
  return p;
}

/** @param {string} text */
export function showAnswerPlaceholder(text) {
  answerEl.replaceChildren(placeholder(text));
}

/**
 * Adds a streamed token to the answer, in one text node, so the answer grows as it is written.
 * @param {string} text
 * @param {boolean} first the first token of the answer: it replaces the placeholder
 */
export function appendToken(text, first) {
  if (first) answerEl.replaceChildren();
  const last = answerEl.lastChild;
  if (last && last.nodeType === Node.TEXT_NODE) last.appendData(text);
  else answerEl.append(text);
}

/** @param {string} text */
export function addNotice(text) {
  const li = document.createElement('li');
  li.textContent = text;
  $('notices').append(li);
}

/**
 * Shows an error in the API's shape (code, message, details) in the alert region, so a screen
 * reader announces it.
 * @param {{ code?: string, message?: string, details?: Array<{ path?: string, message: string }> }} error
 */
export function showError(error) {
  const strong = document.createElement('strong');
  strong.textContent = error.code ?? 'ERROR';
  /** @type {Array<Node | string>} */
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

/** Hides the error, and the marks it left on the fields. */
export function clearError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
  for (const input of [questionInput, collectionInput, topKInput, keyInput]) {
    input.removeAttribute('aria-invalid');
  }
}

/**
 * Clears what the previous question left and shows the new one as asked.
 * @param {string} question
 * @param {boolean} followUp
 */
export function resetView(question, followUp) {
  clearError();
  setStatus('submitting', 'Sending the question…');
  $('asked-kind').textContent = followUp ? 'Follow-up' : 'Question';
  $('asked-text').textContent = question;
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

/**
 * Shows how a question ended.
 * @param {'completed' | 'cancelled' | 'failed'} outcome
 * @param {Record<string, any> | undefined} result
 * @param {boolean} answered whether any of the answer is shown
 */
export function showOutcome(outcome, result, answered) {
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
  if (outcome === 'completed') {
    const total = result?.timings?.totalMs;
    setStatus(
      'completed',
      result?.cached
        ? 'Completed — answered from the cache.'
        : `Completed${typeof total === 'number' ? ` in ${formatMs(total)}` : ''}.`,
    );
  } else if (outcome === 'cancelled') {
    setStatus('cancelled', 'Cancelled.');
    if (!answered) showAnswerPlaceholder('Cancelled before any answer.');
  } else {
    setStatus('failed', 'Failed.');
    if (!answered) showAnswerPlaceholder('No answer.');
  }
}

/** @param {boolean} enabled */
export function setCancelEnabled(enabled) {
  // A disabled button cannot keep the focus: hand it to the Ask button instead of losing it.
  if (!enabled && document.activeElement === cancelButton) askButton.focus();
  cancelButton.disabled = !enabled;
}
