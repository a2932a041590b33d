import type { Route, Source, Turn, Usage } from '@askq/shared';

/** What a model is asked to do. */
export interface GenerateInput {
  question: string;
  /** The question as retrieval saw it (a follow-up made standalone); default `question`. */
  standalone?: string;
  /** The conversation's earlier turns, oldest first. */
  history?: Turn[];
  sources: Source[];
  route: Route;
  signal: AbortSignal;
}

/** A streamed piece of a generation. */
export type GenerationChunk =
  | { type: 'token'; text: string }
  | { type: 'usage'; promptTokens: number; completionTokens: number }
  /** Why the model stopped, when it says: `length` means it hit its token limit mid-answer. */
  | { type: 'end'; reason: string };

/** Any LLM behind one streaming interface. */
export interface ChatModel {
  /** Model name reported in result.model for a route. */
  modelFor(route: Route): string;
  /** Streams the answer; ends early (without throwing) only if signal aborts — callers check signal.aborted. */
  stream(input: GenerateInput): AsyncIterable<GenerationChunk>;
  /**
   * Rewrites a follow-up as a question that stands alone, from the earlier turns. Absent when
   * the model cannot (the offline provider): the caller then carries key terms over itself.
   */
  rewrite?(input: {
    question: string;
    history: Turn[];
    signal: AbortSignal;
  }): Promise<{ text: string; usage: Usage }>;
}
