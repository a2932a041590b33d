import { AppError, type Route, type Source, type Turn, type Usage } from '@askq/shared';
import type { ChatModel } from '../llm/chat-model.js';

/** What generation produced. */
export interface GenerationOutput {
  answer: string;
  model: string;
  usage: Usage;
  /** Milliseconds from the request to the first token, when any arrived. */
  firstTokenMs?: number;
  /** The model went on past the longest answer (or hit its token limit): the answer is cut. */
  truncated?: boolean;
}

/**
 * Streams an answer from the model, handing each token on as it arrives. An answer is at most
 * `maxChars` long: a model that goes on ("repeat this forever") is stopped there, the request is
 * ended (leaving the stream closes it), and the answer keeps what it has, marked truncated.
 */
export async function generate(
  input: {
    question: string;
    standalone?: string;
    history?: Turn[] | undefined;
    sources: Source[];
    route: Route;
  },
  deps: { model: ChatModel; onToken: (text: string) => void; maxChars: number },
  signal: AbortSignal,
): Promise<GenerationOutput> {
  const started = performance.now();
  let answer = '';
  let firstTokenMs: number | undefined;
  let usage: Usage | undefined;
  let truncated = false;
  // Servers stream about one token a chunk: the count stands in when a cut stream sends no usage.
  let chunks = 0;
  for await (const chunk of deps.model.stream({ ...input, signal })) {
    if (chunk.type === 'usage') {
      usage = { promptTokens: chunk.promptTokens, completionTokens: chunk.completionTokens };
      continue;
    }
    if (chunk.type === 'end') {
      if (chunk.reason === 'length') truncated = true;
      continue;
    }
    firstTokenMs ??= performance.now() - started;
    chunks++;
    const room = deps.maxChars - answer.length;
    const text = chunk.text.length > room ? chunk.text.slice(0, room) : chunk.text;
    if (text !== '') {
      answer += text;
      deps.onToken(text);
    }
    if (chunk.text.length > room) {
      truncated = true;
      break;
    }
  }
  // Streams end quietly on abort: without this check a cancelled answer would look complete.
  if (signal.aborted) throw new AppError('CANCELLED', 'the question was cancelled');
  const output: GenerationOutput = {
    answer,
    model: deps.model.modelFor(input.route),
    // A stream askq ended itself sends no usage: the chunks received estimate what it cost.
    usage: usage ?? { promptTokens: 0, completionTokens: truncated ? chunks : 0 },
  };
  if (firstTokenMs !== undefined) output.firstTokenMs = firstTokenMs;
  if (truncated) output.truncated = true;
  return output;
}
