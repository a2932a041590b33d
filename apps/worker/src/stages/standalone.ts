import { toError, type Logger, type Turn, type Usage } from '@askq/shared';
import type { ChatModel } from '../llm/chat-model.js';
import { contentWords } from '../text/tokenize.js';

/** How a follow-up became the question retrieval looks for. */
export interface Standalone {
  /** The question to embed and match passages against. */
  text: string;
  /** `alone`: no conversation; `rewritten` by the model; `lexical`: earlier key terms carried. */
  how: 'alone' | 'rewritten' | 'lexical';
  /** What the rewrite cost, when the model was asked. */
  usage?: Usage;
}

// Key terms carried from earlier turns by the offline fallback: enough to name the subject
// ("mull", "oban", "ferry"), few enough not to drown the follow-up's own words.
const CARRIED_TERMS = 8;

/**
 * The standalone form of a question that continues a conversation: "How long does the crossing
 * take?" after a question about the Mull ferry is about the Mull ferry, and retrieval must look
 * for that. A model that can rewrite does ("How long does the Oban to Mull ferry crossing
 * take?"); without one, or when it fails, the earlier turns' key terms are carried over
 * (lexical), which is what a lexical embedder needs to find the same document again.
 */
export async function standaloneQuestion(
  q: { question: string; history?: Turn[] | undefined },
  deps: { model: ChatModel; log: Logger },
  signal: AbortSignal,
): Promise<Standalone> {
  const history = q.history ?? [];
  if (history.length === 0) return { text: q.question, how: 'alone' };
  if (deps.model.rewrite) {
    try {
      const rewritten = await deps.model.rewrite({ question: q.question, history, signal });
      const text = rewritten.text.trim();
      // A rewrite that is empty or runs on is no question: fall back rather than search for it.
      if (text !== '' && text.length <= 4 * Math.max(q.question.length, 250)) {
        return { text, how: 'rewritten', usage: rewritten.usage };
      }
    } catch (e) {
      signal.throwIfAborted();
      deps.log.warn({ err: toError(e) }, 'follow-up rewrite failed; carrying key terms instead');
    }
  }
  return { text: carryKeyTerms(q.question, history), how: 'lexical' };
}

/**
 * The question followed by the earlier turns' content words it lacks: the user's turns first,
 * most recent first (they name what the conversation is about), then the last answer's.
 */
export function carryKeyTerms(question: string, history: readonly Turn[]): string {
  const seen = new Set(contentWords(question));
  const carried: string[] = [];
  const users = history.filter((turn) => turn.role === 'user').reverse();
  const lastAnswer = history.findLast((turn) => turn.role === 'assistant');
  for (const turn of lastAnswer ? [...users, lastAnswer] : users) {
    for (const word of contentWords(turn.content)) {
      if (carried.length >= CARRIED_TERMS) break;
      // Numbers belong to the earlier question ("in 2023"), not to what the follow-up asks.
      if (seen.has(word) || /^\d/.test(word)) continue;
      seen.add(word);
      carried.push(word);
    }
  }
  return carried.length === 0 ? question : `${question} (${carried.join(' ')})`;
}
