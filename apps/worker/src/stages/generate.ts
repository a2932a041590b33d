import { AppError, type Route, type Source, type Usage } from '@askq/shared';
import type { ChatModel } from '../llm/chat-model.js';

/** What generation produced. */
export interface GenerationOutput {
  answer: string;
  model: string;
  usage: Usage;
  /** Milliseconds from the request to the first token, when any arrived. */
  firstTokenMs?: number;
}

/** Streams an answer from the model, handing each token on as it arrives. */
export async function generate(
  input: { question: string; sources: Source[]; route: Route },
  deps: { model: ChatModel; onToken: (text: string) => void },
  signal: AbortSignal,
): Promise<GenerationOutput> {
  const started = performance.now();
  let answer = '';
  let firstTokenMs: number | undefined;
  let usage: Usage | undefined;
  for await (const chunk of deps.model.stream({ ...input, signal })) {
    if (chunk.type === 'usage') {
      usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens };
      continue;
    }
    firstTokenMs ??= performance.now() - started;
    answer += chunk.text;
    deps.onToken(chunk.text);
  }
  // Streams end quietly on abort: without this check a cancelled answer would look complete.
  if (signal.aborted) throw new AppError('CANCELLED', 'the question was cancelled');
  const output: GenerationOutput = {
    answer,
    model: deps.model.modelFor(input.route),
    usage: usage ?? { promptTokens: 0, completionTokens: 0 },
  };
  if (firstTokenMs !== undefined) output.firstTokenMs = firstTokenMs;
  return output;
}
