// The question being followed: its state, its events, and how it ends. Only one is followed at a
// time; asking another supersedes it (its stream is aborted, the question itself keeps running on
// the server), and every callback checks that its run is still the current one, so a late answer
// to an old question never writes over the new one.

import { getQuestion, headers, readError } from './api.js';
import { addTurn } from './conversation.js';
import {
  STAGES,
  StageClock,
  addNotice,
  appendToken,
  resetView,
  setAttempt,
  setCancelEnabled,
  setStage,
  setStatus,
  showAnswerPlaceholder,
  showConnection,
  showError,
  showOutcome,
} from './render.js';
import { renderResult, renderSources } from './result.js';
import { followEventStream } from './stream.js';

/**
 * @typedef {object} Run
 * @property {string | undefined} id
 * @property {string} question
 * @property {string | undefined} previousQuestionId the turn it follows up, if any
 * @property {string | undefined} eventsUrl
 * @property {AbortController} controller
 * @property {boolean} done
 * @property {number} reconnects times its stream was resumed
 * @property {string} answer the answer shown so far
 * @property {StageClock} stages
 */

/** @type {Run | undefined} */
let current;

/**
 * Starts following a new question, superseding the current one, and clears the view for it.
 * @param {string} question
 * @param {string | undefined} previousQuestionId the turn it follows up, if any
 * @returns {Run}
 */
export function startRun(question, previousQuestionId) {
  if (current && !current.done) {
    // Only stop following the previous question; it keeps running on the server.
    current.done = true;
    current.stages.stopAll();
    current.controller.abort();
  }
  /** @type {Run} */
  const run = {
    id: undefined,
    question,
    previousQuestionId,
    eventsUrl: undefined,
    controller: new AbortController(),
    done: false,
    reconnects: 0,
    answer: '',
    stages: new StageClock(),
  };
  current = run;
  resetView(question, previousQuestionId !== undefined);
  setCancelEnabled(false);
  return run;
}

/** The question being followed, if any (it may be done). */
export function currentRun() {
  return current;
}

/**
 * Whether the run is still the one on screen.
 * @param {Run} run
 */
export function isCurrent(run) {
  return run === current;
}

/**
 * Follows a run's event stream until its terminal event, then settles what the stream could not.
 * @param {Run} run
 */
export async function follow(run) {
  const result = await followEventStream({
    url: /** @type {string} */ (run.eventsUrl),
    headers: () => headers(),
    signal: run.controller.signal,
    isDone: () => run.done,
    onEvent: (event) => handleEvent(run, event),
    onConnection: (text, resumes) => {
      run.reconnects = resumes;
      setConnection(run, text);
    },
  });
  if (result.outcome === 'ended') {
    // Finished and nothing after our last event: read the outcome from the question itself.
    await settleFromView(run);
  } else if (result.outcome === 'refused') {
    fail(run, await readError(result.response));
  } else if (result.outcome === 'unreachable') {
    fail(run, {
      code: 'CONNECTION_LOST',
      message: `could not reach the event stream after ${result.tries} tries`,
    });
  }
}

/**
 * Reads GET /v1/questions/{id} when the stream has nothing more to say.
 * @param {Run} run
 */
async function settleFromView(run) {
  try {
    const res = await getQuestion(/** @type {string} */ (run.id));
    if (!res.ok) {
      fail(run, await readError(res));
      return;
    }
    const view = await res.json();
    if (view.status === 'completed' && view.result) {
      showResult(run, view.result);
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

/**
 * @param {Run} run
 * @param {import('./stream.js').StreamEvent} event
 */
function handleEvent(run, { event, data }) {
  if (run !== current || run.done) return;
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
      setStage(run.stages, payload.stage, payload.state, payload.ms);
      break;
    case 'sources':
      renderSources(payload.sources ?? []);
      break;
    case 'token': {
      const text = String(payload.text ?? '');
      appendToken(text, run.answer === '');
      run.answer += text;
      break;
    }
    case 'retry':
      onRetry(run, payload);
      break;
    case 'completed':
      showResult(run, payload.result);
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

/**
 * Another attempt follows: what the failed one wrote is discarded, and its stages run again.
 * @param {Run} run
 * @param {{ attempt: number, reason: string }} retry
 */
function onRetry(run, { attempt, reason }) {
  setAttempt(attempt);
  run.answer = '';
  showAnswerPlaceholder('Waiting for the new answer…');
  const escalation = reason === 'escalation';
  addNotice(
    escalation
      ? `The fast answer did not pass validation; the smart model writes it again (attempt ${attempt}).`
      : `Attempt ${attempt - 1} failed (${reason}); the answer so far was discarded and attempt ${attempt} follows.`,
  );
  for (const stage of STAGES) {
    // Escalation regenerates from the same sources: retrieval stays as it was.
    if (escalation && stage === 'retrieval') continue;
    setStage(run.stages, stage, 'pending');
  }
  setStatus('queued', escalation ? 'Regenerating with the smart model…' : 'Retrying…');
}

/**
 * @param {Run} run
 * @param {Record<string, any> | undefined} result
 */
export function showResult(run, result) {
  if (!result) return;
  renderResult(result, run.stages);
  run.answer = String(result.answer ?? '');
}

/**
 * @param {Run} run
 * @param {string} text
 */
function setConnection(run, text) {
  if (run !== current) return;
  showConnection(text, run.reconnects);
}

/**
 * Ends a run: stops its stream and clock and shows the outcome.
 * @param {Run} run
 * @param {'completed' | 'cancelled' | 'failed'} outcome
 * @param {Record<string, any>} [result]
 */
export function finish(run, outcome, result) {
  if (run.done) return;
  run.done = true;
  run.stages.stopAll();
  run.controller.abort();
  if (run !== current) return;
  setConnection(run, 'closed');
  if (outcome === 'completed') addTurn(run, result);
  showOutcome(outcome, result, run.answer !== '');
  setCancelEnabled(false);
}

/**
 * @param {Run} run
 * @param {{ code?: string, message?: string }} error
 */
export function fail(run, error) {
  if (run !== current) {
    run.done = true;
    return;
  }
  showError(error);
  finish(run, 'failed');
}
