// The conversation the next question continues: its completed turns, oldest first, and how they
// are shown. Only the newest turn's id goes to the API (as previousQuestionId), which keeps the
// earlier turns itself; the page shows them so one can see what a follow-up builds on.

import { $, questionInput } from './dom.js';

// A `[2]` in an earlier turn named that turn's sources, which the page no longer shows.
const CITATION = /\s?\[\d{1,3}\]/g;

const conversationEl = $('conversation');
const turnsEl = $('turns');

/**
 * @typedef {object} Turn
 * @property {string} id
 * @property {string} question
 * @property {string} answer
 */

/** Empty when the next question stands alone. @type {Turn[]} */
let turns = [];

/** The id of the turn the next question follows up, if any. */
export function lastTurnId() {
  return turns.at(-1)?.id;
}

/**
 * Adds a completed question as the newest turn, unless the conversation moved on while it ran.
 * @param {{ id: string | undefined, question: string, answer: string,
 *   previousQuestionId: string | undefined }} run
 * @param {Record<string, any> | undefined} result
 */
export function addTurn(run, result) {
  if (!run.id) return;
  // "New conversation" (or another follow-up's completion) while it ran: it no longer follows on.
  if (run.previousQuestionId !== lastTurnId()) return;
  turns.push({
    id: run.id,
    question: run.question,
    answer: String(result?.answer ?? run.answer),
  });
  renderConversation();
}

/** Forgets the turns: the next question stands alone. */
export function newConversation() {
  turns = [];
  renderConversation();
  // The button just pressed is hidden now: hand the focus to where the next question is written.
  questionInput.focus();
}

function renderConversation() {
  turnsEl.replaceChildren(
    ...turns.map((turn) => {
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
  const active = turns.length > 0;
  conversationEl.hidden = !active;
  // The newest turn is the one the next question follows: keep it in view.
  turnsEl.scrollTop = turnsEl.scrollHeight;
  setMode(
    active
      ? 'Your next question follows up on the conversation above.'
      : 'New conversation: your next question stands alone.',
  );
}

/**
 * @param {string} className
 * @param {string} who
 * @param {string} text
 */
function turnLine(className, who, text) {
  const p = document.createElement('p');
  p.className = className;
  const speaker = document.createElement('span');
  speaker.className = 'who';
  speaker.textContent = who;
  p.append(speaker, ` ${text}`);
  return p;
}

/**
 * Says, next to the question field (and to screen readers), whether it continues the thread.
 * @param {string} text
 */
function setMode(text) {
  const mode = $('question-mode');
  // Rewriting the same words would be announced again by some screen readers.
  if (mode.textContent !== text) mode.textContent = text;
}
