// askq demo page: plain ES modules, no framework, no build step. This module wires the form to
// the API; the others do one thing each:
//   run.js           the question being followed: its state, its events, how it ends
//   api.js           HTTP calls to the API and the API key they carry
//   stream.js        the event-stream reader (fetch, so it can send Authorization) and its resume
//   render.js        progress: status, stages, the streaming answer, notices, errors
//   result.js        the finished result: cited answer, sources, checks, facts
//   conversation.js  the completed turns a follow-up continues
//   collections.js   the collection picker
//   dom.js           the page's elements
// The API: POST /v1/questions, GET /v1/questions/{id}/events (resumed with Last-Event-ID after a
// network error), GET and DELETE /v1/questions/{id}, GET /v1/collections.
// Once an answer completes, the next question is a follow-up: its POST names the last completed
// question as previousQuestionId, and askq answers it in the light of the earlier turns.

import { apiKey, cancelQuestion, eventsUrl, postQuestion, readError, saveKey } from './api.js';
import { loadCollections } from './collections.js';
import { lastTurnId, newConversation } from './conversation.js';
import {
  $,
  answerEl,
  askButton,
  authDetails,
  cacheInput,
  cancelButton,
  collectionInput,
  form,
  keyInput,
  modelSelect,
  questionInput,
  topKInput,
} from './dom.js';
import {
  addNotice,
  clearError,
  placeholder,
  setCancelEnabled,
  setStatus,
  showError,
} from './render.js';
import { currentRun, fail, finish, follow, isCurrent, showResult, startRun } from './run.js';

// ---------------------------------------------------------------------------------------------
// Actions

/**
 * @param {HTMLElement} input
 * @param {string} code
 * @param {string} message
 */
function invalid(input, code, message) {
  showError({ code, message });
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

/** @param {SubmitEvent} event */
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

  const run = startRun(question, lastTurnId());

  let res;
  try {
    res = await postQuestion(
      {
        question,
        collection,
        model: modelSelect.value,
        topK,
        cache: cacheInput.checked,
        ...(run.previousQuestionId ? { previousQuestionId: run.previousQuestionId } : {}),
      },
      run.controller.signal,
    );
  } catch {
    if (!isCurrent(run)) return;
    fail(run, { code: 'NETWORK_ERROR', message: 'could not reach askq' });
    return;
  }
  if (!isCurrent(run)) return;
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
  run.eventsUrl = body.links?.events ?? eventsUrl(body.id);
  $('question-id').textContent = body.id;

  if (res.status === 200 && body.result) {
    // Answered from the exact cache: the result is here already.
    showResult(run, body.result);
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
  const run = currentRun();
  if (!run || run.done || !run.id) return;
  cancelButton.disabled = true;
  askButton.focus();
  setStatus('cancelling', 'Cancelling…');
  let res;
  try {
    res = await cancelQuestion(run.id);
  } catch {
    showError({ code: 'NETWORK_ERROR', message: 'could not send the cancel; try again' });
    setCancelEnabled(!run.done);
    return;
  }
  if (run.done || !isCurrent(run)) return;
  if (res.status === 409) {
    addNotice('It had already finished: nothing to cancel.');
  } else if (!res.ok) {
    showError(await readError(res));
    setCancelEnabled(true);
  }
  // 200 (queued) and 202 (running): the stream delivers `cancelled`.
}

/**
 * Keeps the key for the tab and says whether one is set, next to the details' summary.
 * @param {string} value
 */
function setKey(value) {
  saveKey(value);
  $('auth-state').textContent = value ? '(set for this tab)' : '(none)';
}

// ---------------------------------------------------------------------------------------------
// Wiring

form.addEventListener('submit', (event) => void ask(event));
cancelButton.addEventListener('click', () => void cancel());
$('new-conversation').addEventListener('click', newConversation);
questionInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

// The markup's whitespace around the placeholder would show in the pre-wrapped answer box.
answerEl.replaceChildren(placeholder('The answer appears here as it is written.'));

/** @type {ReturnType<typeof setTimeout> | undefined} */
let keyTimer;
keyInput.value = apiKey();
setKey(keyInput.value);
if (keyInput.value) authDetails.open = false;
keyInput.addEventListener('input', () => {
  keyInput.removeAttribute('aria-invalid');
  setKey(keyInput.value.trim());
  // Typing a key: list the collections once it has settled, not at every keystroke.
  clearTimeout(keyTimer);
  keyTimer = setTimeout(() => void loadCollections(), 300);
});
$('forget-key').addEventListener('click', () => {
  keyInput.value = '';
  setKey('');
  keyInput.focus();
  void loadCollections();
});

void loadCollections();
