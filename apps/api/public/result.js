// DOM rendering of a finished result (and of the sources, which stream in before it): the answer
// with its citations linked, the passages, the validation checks and the result's facts.

import { $, answerEl } from './dom.js';
import { STAGES, formatMs, setStage } from './render.js';

/** Characters of a passage shown; the full text is in the API's result. */
const EXCERPT_CHARS = 280;

/**
 * The answer with its [n] citations linked to the sources they name.
 * @param {string} answer
 * @param {number} sourceCount
 */
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

/**
 * The passage as one line of prose: Markdown heading lines (the title, usually) left out.
 * @param {string} text
 */
function excerptOf(text) {
  const prose = text
    .replace(/^#{1,6}\s.*$/gm, '')
    .replace(/\s+/g, ' ')
    .trim();
  const flat = prose || text.replace(/\s+/g, ' ').trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS).trimEnd()}…` : flat;
}

/**
 * The retrieved passages, numbered as the answer cites them (#source-n is a citation's target).
 * @param {Array<Record<string, any>>} sources
 */
export function renderSources(sources) {
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

/** @param {Record<string, any> | undefined} validation */
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

/**
 * A question's result in full: answer with citations, sources, checks, the result's facts, and
 * the stages' durations.
 * @param {Record<string, any>} result
 * @param {import('./render.js').StageClock} clock the run's
 */
export function renderResult(result, clock) {
  const sources = result.sources ?? [];
  renderSources(sources);
  renderAnswer(String(result.answer ?? ''), sources.length);
  renderChecks(result.validation);
  const timings = result.timings ?? {};
  const usage = result.usage;
  /** @type {Record<string, string>} */
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
      setStage(clock, stage, result.cached && typeof ms !== 'number' ? 'cached' : 'completed', ms);
    }
  }
}
