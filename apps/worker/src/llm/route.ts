import type { ModelChoice, Route, Source } from '@askq/shared';

/** Why a route was taken: a fixed set, safe as a log field or metric label. */
export type RouteReason =
  'requested' | 'long' | 'multi_part' | 'comparative' | 'weak_retrieval' | 'simple';

/** What {@link chooseRoute} looks at. */
export interface RouteInput {
  question: string;
  requested: ModelChoice;
  sources: Source[];
  /** Best retrieval similarity below which retrieval counts as weak (default 0.3). */
  weakScore?: number;
}

// Characters; beyond this a question usually carries context or several asks.
const LONG_QUESTION_CHARS = 300;
// Best retrieval similarity below which the passages probably miss the point, and a stronger model
// is more likely to say so instead of stitching an answer together.
const WEAK_RETRIEVAL_SCORE = 0.3;

/**
 * The weak-retrieval bar for an embedder. Lexical hash similarities run lower than semantic ones
 * (on the quality test set: right documents median 0.16, off-topic questions' best 0.07-0.11).
 */
export function defaultWeakScore(embedder: string): number {
  return embedder === 'hash' ? 0.1 : WEAK_RETRIEVAL_SCORE;
}

const COMPARATIVE =
  /\b(?:compar(?:e|es|ed|ing|ison)|differences? between|differ(?:s|ent)? from|vs\.?|versus|(?:better|worse|faster|slower|cheaper) than|pros and cons|trade-?offs?)(?=\W|$)/i;
const WH_WORD = /\b(?:what|why|how|when|where|which|who|whom|whose)\b/gi;
// A list item at the start of a line, or an inline "(1) ... (2)" / "1) ... 2)" enumeration.
// Spaces and tabs only before a marker: `\s*` would also take newlines, and a run of blank lines
// would be rescanned from each of them.
const ENUMERATION = /(?:^|\n)[ \t]*(?:[-*+]|\d{1,2}[.)])\s|(?:^|\s)\(?\d{1,2}\)\s/g;

/** Picks the route for a question: the requested one, or for `auto` a cheap heuristic (SPEC 5). */
export function chooseRoute(input: RouteInput): { route: Route; reason: RouteReason } {
  if (input.requested !== 'auto') return { route: input.requested, reason: 'requested' };
  const question = input.question.trim();
  // The first reason that applies is reported, question shape before retrieval.
  if (question.length > LONG_QUESTION_CHARS) return { route: 'smart', reason: 'long' };
  if (COMPARATIVE.test(question)) return { route: 'smart', reason: 'comparative' };
  if (isMultiPart(question)) return { route: 'smart', reason: 'multi_part' };
  const best = input.sources.reduce((max, s) => Math.max(max, s.score), -Infinity);
  if (best < (input.weakScore ?? WEAK_RETRIEVAL_SCORE))
    return { route: 'smart', reason: 'weak_retrieval' };
  return { route: 'fast', reason: 'simple' };
}

function isMultiPart(question: string): boolean {
  if ((question.match(/\?/g) ?? []).length >= 2) return true;
  if ((question.match(ENUMERATION) ?? []).length >= 2) return true;
  // "What is X and how do I Y": two asks joined into one sentence.
  const whWords = (question.match(WH_WORD) ?? []).length;
  return whWords >= 2 && /\band\b|;/i.test(question);
}
