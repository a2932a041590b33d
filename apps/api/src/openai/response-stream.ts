import type { LoggedEvent, PublicError, QuestionResult, Source } from '@askq/shared';

/** What a response says of the question behind it; all of it is read back from the record. */
export interface ResponseIdentity {
  questionId: string;
  model: string;
  /** Epoch seconds. */
  createdAt: number;
  previousQuestionId?: string | undefined;
}

/** A response id is its question's id, prefixed as OpenAI's are. */
export const responseIdOf = (questionId: string) => `resp_${questionId}`;

/** The question id inside a response id; undefined for an id that is not one. */
export function questionIdOf(responseId: string): string | undefined {
  return responseId.startsWith('resp_') ? responseId.slice(5) : undefined;
}

type Status = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';

interface OutputText {
  type: 'output_text';
  text: string;
  annotations: Annotation[];
  logprobs: [];
}

interface MessageItem {
  id: string;
  type: 'message';
  role: 'assistant';
  status: 'in_progress' | 'completed' | 'incomplete';
  content: OutputText[];
}

interface Annotation {
  type: 'file_citation';
  file_id: string;
  filename: string;
  index: number;
}

/** One event of a response stream, numbered. */
export interface ResponseEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

// `[2]` in an answer cites its second source.
const CITATION = /\[(\d{1,3})\]/g;

/**
 * Translates a question's event log into a Responses API stream, deterministically: the same
 * log gives the same events with the same `sequence_number`s in any API process, which is what
 * lets a client resume with `starting_after` anywhere. It also keeps the response as it stands
 * (`snapshot`), for a poll.
 *
 * Each attempt's answer is its own output message. When askq discards one (a `retry`), its
 * message ends `incomplete` with its text emptied (`response.content_part.done` and
 * `response.output_item.done` carry the empty part), so a client that builds the response from
 * the events, as the SDKs do, keeps only the answer that stands.
 */
export function createResponseStream(identity: ResponseIdentity) {
  let sequence = 0;
  let status: Status = 'queued';
  let created = false;
  const output: MessageItem[] = [];
  let open: MessageItem | undefined;
  let sources: Source[] = [];
  let result: QuestionResult | undefined;
  let error: PublicError | undefined;

  const snapshot = () => ({
    id: responseIdOf(identity.questionId),
    object: 'response' as const,
    created_at: identity.createdAt,
    status,
    background: null,
    error: error ? { code: error.code.toLowerCase(), message: error.message } : null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    metadata: {},
    model: identity.model,
    output: structuredClone(output),
    output_text: output
      .filter((item) => item.status !== 'incomplete')
      .map((item) => item.content.map((part) => part.text).join(''))
      .join(''),
    parallel_tool_calls: false,
    previous_response_id: identity.previousQuestionId
      ? responseIdOf(identity.previousQuestionId)
      : null,
    temperature: null,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: null,
    truncation: 'disabled',
    usage: result
      ? {
          input_tokens: result.usage.promptTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: result.usage.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: result.usage.promptTokens + result.usage.completionTokens,
        }
      : null,
    // askq's extensions: SDKs ignore fields they do not know.
    sources,
    question_id: identity.questionId,
  });

  const emit = (events: ResponseEvent[], type: string, fields: Record<string, unknown> = {}) => {
    events.push({ type, sequence_number: sequence++, ...fields });
  };
  const at = (item: MessageItem) => ({ item_id: item.id, output_index: output.indexOf(item) });

  const openItem = (events: ResponseEvent[]) => {
    const item: MessageItem = {
      id: `msg_${identity.questionId.replaceAll('-', '')}_${output.length}`,
      type: 'message',
      role: 'assistant',
      status: 'in_progress',
      content: [],
    };
    output.push(item);
    emit(events, 'response.output_item.added', {
      output_index: output.length - 1,
      item: structuredClone(item),
    });
    const part: OutputText = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    item.content.push(part);
    emit(events, 'response.content_part.added', {
      ...at(item),
      content_index: 0,
      part: { ...part },
    });
    open = item;
    return item;
  };
  const delta = (events: ResponseEvent[], text: string) => {
    if (text === '') return;
    const item = open ?? openItem(events);
    item.content[0]!.text += text;
    emit(events, 'response.output_text.delta', {
      ...at(item),
      content_index: 0,
      delta: text,
      logprobs: [],
    });
  };
  /** Ends the open message as discarded: its text goes, for clients that rebuild the response. */
  const discard = (events: ResponseEvent[]) => {
    const item = open;
    if (!item) return;
    open = undefined;
    item.status = 'incomplete';
    item.content[0] = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    emit(events, 'response.content_part.done', {
      ...at(item),
      content_index: 0,
      part: structuredClone(item.content[0]),
    });
    emit(events, 'response.output_item.done', { ...at(item), item: structuredClone(item) });
  };
  const complete = (events: ResponseEvent[], answer: string) => {
    const shown = open?.content[0]!.text ?? '';
    // The answer is what its tokens said; if it is not (its tokens were cut), it is sent again.
    if (open && !answer.startsWith(shown)) discard(events);
    delta(events, answer.slice(open ? shown.length : 0));
    const item = open ?? openItem(events);
    const part = item.content[0]!;
    for (const match of answer.matchAll(CITATION)) {
      const source = sources[Number(match[1]) - 1];
      if (!source) continue;
      const annotation: Annotation = {
        type: 'file_citation',
        file_id: source.documentId,
        filename: source.title ?? source.documentId,
        index: match.index,
      };
      part.annotations.push(annotation);
      emit(events, 'response.output_text.annotation.added', {
        ...at(item),
        content_index: 0,
        annotation_index: part.annotations.length - 1,
        annotation,
      });
    }
    emit(events, 'response.output_text.done', {
      ...at(item),
      content_index: 0,
      text: part.text,
      logprobs: [],
    });
    emit(events, 'response.content_part.done', {
      ...at(item),
      content_index: 0,
      part: structuredClone(part),
    });
    item.status = 'completed';
    open = undefined;
    emit(events, 'response.output_item.done', { ...at(item), item: structuredClone(item) });
  };

  return {
    /** The events an askq event becomes (none, for most stage events). */
    push(event: LoggedEvent): ResponseEvent[] {
      const events: ResponseEvent[] = [];
      if (!created) {
        created = true;
        emit(events, 'response.created', { response: snapshot() });
      }
      // An answer from the exact cache has no `status` events: its first event starts it.
      const queued =
        event.event === 'status' &&
        (JSON.parse(event.data) as { status: string }).status === 'queued';
      if (status === 'queued' && !queued) {
        status = 'in_progress';
        emit(events, 'response.in_progress', { response: snapshot() });
      }
      switch (event.event) {
        case 'sources':
          sources = (JSON.parse(event.data) as { sources: Source[] }).sources;
          break;
        case 'token':
          delta(events, (JSON.parse(event.data) as { text: string }).text);
          break;
        case 'retry':
          discard(events);
          break;
        case 'completed':
          result = (JSON.parse(event.data) as { result: QuestionResult }).result;
          sources = result.sources;
          complete(events, result.answer);
          status = 'completed';
          emit(events, 'response.completed', { response: snapshot() });
          break;
        case 'failed':
          error = (JSON.parse(event.data) as { error: PublicError }).error;
          discard(events);
          status = 'failed';
          emit(events, 'response.failed', { response: snapshot() });
          break;
        case 'cancelled':
          discard(events);
          status = 'cancelled';
          // The Responses API has no event of its own for a cancel: the response ends
          // incomplete, with status `cancelled`.
          emit(events, 'response.incomplete', { response: snapshot() });
          break;
        default:
          break;
      }
      return events;
    },

    /** The response as it stands after the events pushed so far. */
    snapshot,
  };
}

/** One event as an SSE frame, named by its type as OpenAI's streams are. */
export function responseFrame(event: ResponseEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
