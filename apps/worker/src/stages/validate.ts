import type { Source, Validation, ValidationCheck } from '@askq/shared';
import { terms } from '../text/terms.js';
import { contentWords, foldPlural, splitSentences } from '../text/tokenize.js';

/** What {@link validateAnswer} checks an answer against. */
export interface ValidateInput {
  answer: string;
  sources: Source[];
  /** Longest acceptable answer in UTF-16 code units, the unit the API's own limits use. */
  maxAnswerChars: number;
  /** Least share of the answer's content words that must occur in the sources, 0..1. */
  groundingThreshold: number;
  /** The model was stopped at the longest answer (or its token limit) with more to say. */
  truncated?: boolean;
}

// [1], [1, 2], [1-3] and [1–3]; [1][2] is two markers. Anything else in brackets is prose.
const CITATION = /\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]/g;

/** Runs the answer checks of SPEC 5 in a fixed order: non_empty, length, citations, grounding. */
export function validateAnswer(input: ValidateInput): Validation {
  const { answer, sources } = input;
  const cited = citedNumbers(answer);
  const checks: ValidationCheck[] = [
    answer.trim() === ''
      ? { name: 'non_empty', passed: false, detail: 'answer is empty' }
      : { name: 'non_empty', passed: true },
    checkLength(answer, input.maxAnswerChars, input.truncated === true),
    checkCitations(answer, cited, sources, input.groundingThreshold),
    checkGrounding(answer, cited, sources, input.groundingThreshold),
  ];
  return { passed: checks.every((c) => c.passed), checks };
}

function checkLength(answer: string, max: number, truncated: boolean): ValidationCheck {
  const length = answer.length;
  if (truncated) {
    return {
      name: 'length',
      passed: false,
      detail: `cut off at ${length} chars: the model went on`,
    };
  }
  return length <= max
    ? { name: 'length', passed: true, detail: `${length} <= ${max} chars` }
    : { name: 'length', passed: false, detail: `${length} > ${max} chars` };
}

function checkCitations(
  answer: string,
  cited: number[],
  sources: Source[],
  threshold: number,
): ValidationCheck {
  const sourceCount = sources.length;
  if (cited.length === 0) return { name: 'citations', passed: true, detail: 'no citations' };
  const bad = [...new Set(cited.filter((n) => n < 1 || n > sourceCount))].sort((a, b) => a - b);
  if (bad.length > 0) {
    return {
      name: 'citations',
      passed: false,
      detail: `unknown sources [${bad.join(', ')}] of ${sourceCount}`,
    };
  }
  const miscited = miscitedClaim(answer, sources, threshold);
  if (miscited) return { name: 'citations', passed: false, detail: miscited };
  const distinct = [...new Set(cited)].sort((a, b) => a - b);
  return { name: 'citations', passed: true, detail: `cites [${distinct.join(', ')}]` };
}

// A claim needs this many content words before its support can be judged.
const MIN_CLAIM_WORDS = 2;
// Markers with nothing but spaces and punctuation between them cite one claim together.
const MARKER_GROUP = new RegExp(`(?:${CITATION.source}[\\s.,;:]*)+`, 'g');
// How much of a claim the detail quotes.
const CLAIM_QUOTE_CHARS = 60;

/**
 * The first claim not supported by the sources it cites, described; undefined when each is. A
 * claim is the sentence before a group of markers (within the text since the previous group):
 * "A [1]. B [2]." and "A. [1] B. [2]" both claim A from [1] and B from [2], and in "A [1]. C. B
 * [2]." the uncited C is no claim of [2]'s. It is supported when at least `threshold`
 * of its content words (stemmed) occur in the sources it cites: a fact of [1] cited as [2] is
 * flagged, even though the answer as a whole is grounded.
 */
function miscitedClaim(answer: string, sources: Source[], threshold: number): string | undefined {
  // A source's title is part of what the model read (the prompt's fence carries it).
  const vocabularies = sources.map((s) => new Set(terms(`${s.title ?? ''} ${s.text}`)));
  let from = 0;
  for (const group of answer.matchAll(MARKER_GROUP)) {
    // The sentence just before the marks: an uncited sentence before it is not this claim's.
    const claim = lastSentence(answer.slice(from, group.index));
    from = group.index + group[0].length;
    const words = terms(claim);
    if (words.length < MIN_CLAIM_WORDS) continue;
    const numbers = citedNumbers(group[0]).filter((n) => n >= 1 && n <= sources.length);
    const support = (indexes: number[]) =>
      words.filter((w) => indexes.some((i) => vocabularies[i]!.has(w))).length / words.length;
    const score = support(numbers.map((n) => n - 1));
    if (score >= threshold) continue;
    const others = sources.map((_, i) => i).filter((i) => !numbers.includes(i + 1));
    const better = others
      .map((i) => ({ n: i + 1, score: support([i]) }))
      .sort((a, b) => b.score - a.score)[0];
    const quoted = claim.trim().slice(0, CLAIM_QUOTE_CHARS);
    const cites = `[${[...new Set(numbers)].join(', ')}]`;
    const hint =
      better && better.score >= threshold
        ? `; [${better.n}] would (${better.score.toFixed(2)})`
        : '';
    return `"${quoted}" is not in ${cites} (${score.toFixed(2)} < ${threshold})${hint}`;
  }
  return undefined;
}

const DECLINE_MAX_CHARS = 200;
const DECLINE =
  /\b(?:sources?|documents?|passages?|context)\b.{1,40}\b(?:do(?:es)?n[o']t|do(?:es)? not|never)\b.{1,20}\b(?:contain|mention|say|cover|include|answer|address)/i;

function checkGrounding(
  answer: string,
  cited: number[],
  sources: Source[],
  threshold: number,
): ValidationCheck {
  if (sources.length === 0) {
    return { name: 'grounding', passed: cited.length === 0, detail: 'no sources' };
  }
  // Saying the sources hold no answer is grounded by definition, and the prompt asks for it; kept
  // one short, uncited sentence so an answer cannot pass by tacking a refusal onto claims of its own.
  if (
    cited.length === 0 &&
    answer.length <= DECLINE_MAX_CHARS &&
    splitSentences(answer).length === 1 &&
    DECLINE.test(answer)
  ) {
    return { name: 'grounding', passed: true, detail: 'declined: the sources do not answer' };
  }
  // Markers are removed first: their digits would otherwise count as words found in the sources.
  const words = contentWords(answer.replace(CITATION, ' ')).map(foldPlural);
  if (words.length === 0) {
    return { name: 'grounding', passed: false, detail: 'no content words' };
  }
  const known = new Set<string>();
  for (const source of sources)
    for (const word of contentWords(source.text)) known.add(foldPlural(word));
  const score = words.filter((w) => known.has(w)).length / words.length;
  const passed = score >= threshold;
  return {
    name: 'grounding',
    passed,
    detail: `score ${score.toFixed(2)} ${passed ? '>=' : '<'} ${threshold}`,
  };
}

/** The last sentence of a stretch of text: after its last full stop, ! or ? followed by a space. */
function lastSentence(text: string): string {
  const trimmed = text.trimEnd();
  let cut = -1;
  for (let i = trimmed.length - 2; i >= 0; i--) {
    const c = trimmed[i];
    if ((c === '.' || c === '!' || c === '?') && /\s/.test(trimmed[i + 1] ?? '')) {
      cut = i + 1;
      break;
    }
  }
  return cut < 0 ? trimmed : trimmed.slice(cut);
}

/** Every source number the answer cites, with repeats, ranges expanded. */
export function citedNumbers(answer: string): number[] {
  const numbers: number[] = [];
  for (const [marker] of answer.matchAll(CITATION)) {
    for (const part of marker.slice(1, -1).split(',')) {
      const [from, to] = part.split(/[–-]/).map((n) => Number.parseInt(n, 10));
      if (from === undefined || Number.isNaN(from)) continue;
      if (to === undefined || Number.isNaN(to)) {
        numbers.push(from);
        continue;
      }
      // A reversed or huge range is bad input, not a reason to loop for long: keep its ends.
      if (to < from || to - from > 100) numbers.push(from, to);
      else for (let n = from; n <= to; n++) numbers.push(n);
    }
  }
  return numbers;
}
