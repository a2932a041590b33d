import { createHash } from 'node:crypto';
import { z } from 'zod';

/** One earlier turn of a conversation, as a client sends it or askq keeps it. */
export const Turn = z.strictObject({
  role: z.enum(['user', 'assistant']),
  content: z.string().max(20_000, 'at most 20000 characters'),
});
export type Turn = z.infer<typeof Turn>;

/** How much of a conversation a question carries: the most recent turns, within both bounds. */
export interface HistoryLimits {
  /** Most turns (a question and its answer are two). */
  turns: number;
  /** Most characters over all kept turns. */
  chars: number;
}

// A `[3]` in an earlier answer cited that answer's sources, not the ones the follow-up will get:
// left in, it would invite the model to cite a number that means something else now.
const CITATION = /\s?\[\d{1,3}\]/g;

/**
 * The most recent turns that fit the limits, oldest first, with earlier answers' citation marks
 * removed. The oldest turn kept may be cut from its start to fit: what was said last matters most.
 * The turns alternate, starting with the user's, as strict chat templates (vLLM's for Mistral or
 * Llama 2, say) require: consecutive turns of one role are joined, and an assistant turn before
 * the first user turn is dropped. Linear in the turns' length.
 */
export function boundHistory(turns: readonly Turn[], limits: HistoryLimits): Turn[] {
  return alternate(recent(turns, limits));
}

function alternate(turns: Turn[]): Turn[] {
  const joined: Turn[] = [];
  for (const turn of turns) {
    const last = joined.at(-1);
    if (last?.role === turn.role) last.content = `${last.content}\n\n${turn.content}`;
    else if (last || turn.role === 'user') joined.push({ ...turn });
  }
  return joined;
}

function recent(turns: readonly Turn[], limits: HistoryLimits): Turn[] {
  const kept: Turn[] = [];
  let budget = limits.chars;
  for (let i = turns.length - 1; i >= 0 && kept.length < limits.turns && budget > 0; i--) {
    const turn = turns[i]!;
    const text = (turn.role === 'assistant' ? turn.content.replace(CITATION, '') : turn.content)
      .replace(/\s+/g, ' ')
      .trim();
    if (text === '') continue;
    const content = text.length > budget ? text.slice(text.length - budget).trimStart() : text;
    budget -= content.length;
    kept.push({ role: turn.role, content });
  }
  return kept.reverse();
}

/**
 * A hash of the conversation a question continues, '' for a question that stands alone. It is
 * part of every cache key: "How long does the crossing take?" means a different thing after each
 * ferry, so a follow-up is only ever answered from a question asked after the same turns.
 */
export function contextOf(history: readonly Turn[] | undefined): string {
  if (!history || history.length === 0) return '';
  const digest = createHash('sha256');
  for (const turn of history)
    digest.update(`${turn.role}\n${turn.content.length}\n${turn.content}`);
  return digest.digest('hex').slice(0, 32);
}
