import type { LoggedEvent, Source } from '@askq/shared';
import { accumulateResponse } from 'openai/lib/responses/ResponseAccumulator';
import type { Response, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import { log } from './event-log.fixture.js';
import {
  createResponseStream,
  questionIdOf,
  responseFrame,
  responseIdOf,
  type ResponseEvent,
} from './response-stream.js';

const source = (n: number, title?: string): Source => ({
  documentId: `doc-${n}`,
  chunkId: `doc-${n}#0`,
  ...(title === undefined ? {} : { title }),
  text: `text ${n}`,
  score: 0.9,
});

const identity = { questionId: 'q-1', model: 'askq', createdAt: 1_700_000_000 };

/** A fresh translation of a whole log: every event it gives, and the stream for its snapshot. */
function translate(events: LoggedEvent[]) {
  const stream = createResponseStream(identity);
  return { out: events.flatMap((e) => stream.push(e)), stream };
}

const types = (events: ResponseEvent[]) => events.map((e) => e.type);

/** A whole question's log: queued, retrieval, sources, two tokens, completed with a citation. */
const answered = () =>
  log()
    .status('queued')
    .status('active')
    .stage('retrieval', 'started')
    .stage('retrieval', 'completed')
    .sources([source(1, 'Guide')])
    .stage('generation', 'started')
    .token('Paris is ')
    .token('the capital [1].')
    .stage('generation', 'completed')
    .completed('Paris is the capital [1].', [source(1, 'Guide')]).events;

/** A log where the first attempt's text is discarded and the second one's stands. */
const retried = () =>
  log()
    .status('queued')
    .status('active')
    .sources([source(1, 'Guide')])
    .token('Paris is in ')
    .token('Spain.')
    .retry()
    .status('active', 2)
    .token('Paris is in ', 2)
    .token('France [1].', 2)
    .completed('Paris is in France [1].', [source(1, 'Guide')]).events;

/** Folds the events with the OpenAI SDK's own accumulator, as `client.responses.stream` does. */
function accumulate(events: ResponseEvent[]): Response {
  let snapshot: Response | undefined;
  for (const event of events) {
    snapshot = accumulateResponse(event as unknown as ResponseStreamEvent, snapshot);
  }
  return snapshot!;
}

describe('createResponseStream', () => {
  describe('sequence numbers', () => {
    it('run 0, 1, 2, ... without gaps, over events that give none too', () => {
      for (const events of [answered(), retried()]) {
        const { out } = translate(events);
        expect(out.map((e) => e.sequence_number)).toEqual(out.map((_, i) => i));
      }
    });

    it('are the same, with the same events, when the same log is translated twice', () => {
      // Any API process must number a question's events alike: resume relies on it.
      const first = translate(retried());
      const second = translate(retried());
      expect(second.out).toEqual(first.out);
      expect(second.stream.snapshot()).toEqual(first.stream.snapshot());
    });

    it('continue a prefix of the log exactly as a translation of the whole log does', () => {
      // A client that saw the events of a prefix (in one process) and resumes in another,
      // which translates the log again and skips what the client saw, gets exactly the rest.
      const events = retried();
      const whole = translate(events).out;
      for (let k = 0; k <= events.length; k++) {
        const stream = createResponseStream(identity);
        const seen = events.slice(0, k).flatMap((e) => stream.push(e));
        const rest = events.slice(k).flatMap((e) => stream.push(e));
        expect([...seen, ...rest]).toEqual(whole);
        const lastSeen = seen.at(-1)?.sequence_number ?? -1;
        expect(whole.filter((e) => e.sequence_number > lastSeen)).toEqual(rest);
      }
    });
  });

  it('translates a whole question into OpenAI’s lifecycle of events', () => {
    const { out } = translate(answered());
    expect(types(out)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.annotation.added',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    // Created while queued; the `active` status starts it.
    expect(out[0]!.response).toMatchObject({ id: 'resp_q-1', status: 'queued', output: [] });
    expect(out[1]!.response).toMatchObject({ status: 'in_progress' });
  });

  it('joins its deltas into the completed response’s output_text', () => {
    const { out, stream } = translate(answered());
    const deltas = out
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta as string)
      .join('');
    const completed = out.at(-1)!.response as { output_text: string; status: string };
    expect(deltas).toBe('Paris is the capital [1].');
    expect(completed.output_text).toBe(deltas);
    expect(completed.status).toBe('completed');
    expect(stream.snapshot().output_text).toBe(deltas);
    expect(stream.snapshot().usage).toMatchObject({
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
    });
  });

  it('starts an exact-cache answer (no status events) with created, then in_progress', () => {
    const { out } = translate(
      log()
        .sources([source(1)])
        .token('Cached.')
        .completed('Cached.', [source(1)]).events,
    );
    expect(types(out).slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(types(out).at(-1)).toBe('response.completed');
    expect((out.at(-1)!.response as { output_text: string }).output_text).toBe('Cached.');
  });

  it('sends an answer that had no tokens whole, as one delta', () => {
    const { out } = translate(log().sources([]).completed('No sources.').events);
    const deltas = out.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.map((e) => e.delta)).toEqual(['No sources.']);
  });

  describe('a retry', () => {
    it('ends the discarded message incomplete with empty text; the next tokens open index 1', () => {
      const { out } = translate(retried());
      const retryAt = out.findIndex((e) => e.type === 'response.content_part.done');
      expect(out[retryAt]).toMatchObject({
        type: 'response.content_part.done',
        output_index: 0,
        item_id: 'msg_q1_0',
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [] },
      });
      expect(out[retryAt + 1]).toMatchObject({
        type: 'response.output_item.done',
        output_index: 0,
        item: { id: 'msg_q1_0', status: 'incomplete', content: [{ text: '' }] },
      });
      expect(out[retryAt + 2]).toMatchObject({
        type: 'response.output_item.added',
        output_index: 1,
        item: { id: 'msg_q1_1', status: 'in_progress' },
      });
      // Every later event is about the second message.
      const later = out.slice(retryAt + 2).filter((e) => 'output_index' in e);
      expect(later.length).toBeGreaterThan(0);
      // (output_item.added names its item inside `item`, the others by `item_id`.)
      const itemIds = later.map((e) => e.item_id ?? (e.item as { id: string }).id);
      expect(later.map((e) => e.output_index)).toEqual(later.map(() => 1));
      expect(itemIds).toEqual(later.map(() => 'msg_q1_1'));
    });

    it('leaves the discarded text out of snapshot().output_text, during and after', () => {
      const events = retried();
      const stream = createResponseStream(identity);
      const retryIndex = events.findIndex((e) => e.event === 'retry');
      for (const e of events.slice(0, retryIndex)) stream.push(e);
      expect(stream.snapshot().output_text).toBe('Paris is in Spain.');
      stream.push(events[retryIndex]!);
      expect(stream.snapshot().output_text).toBe('');
      for (const e of events.slice(retryIndex + 1)) stream.push(e);
      const snapshot = stream.snapshot();
      expect(snapshot.output_text).toBe('Paris is in France [1].');
      expect(snapshot.output.map((item) => item.status)).toEqual(['incomplete', 'completed']);
    });

    it('does nothing to the output when no token came before it', () => {
      const { out } = translate(
        log().status('active').retry().token('Hi', 2).completed('Hi').events,
      );
      expect(out.filter((e) => e.type === 'response.output_item.added')).toHaveLength(1);
      expect(out.find((e) => e.type === 'response.output_item.added')!.output_index).toBe(0);
    });
  });

  it('sends a final answer that differs from its tokens as a new message', () => {
    // The tokens said something the answer does not begin with: they are discarded like a
    // retry's, and the answer follows whole.
    const { out, stream } = translate(
      log().status('active').token('Paris is in Spain').completed('Paris is in France.').events,
    );
    const snapshot = stream.snapshot();
    expect(snapshot.output.map((item) => item.status)).toEqual(['incomplete', 'completed']);
    expect(snapshot.output_text).toBe('Paris is in France.');
    expect(out.filter((e) => e.type === 'response.output_text.delta').at(-1)).toMatchObject({
      output_index: 1,
      delta: 'Paris is in France.',
    });
  });

  describe('annotations', () => {
    it('gives one file_citation per [n] whose source exists, at the mark’s position', () => {
      const answer = 'Paris [1] is big [2]; see [1] again, not [9].';
      const sources = [source(1, 'Guide'), source(2)];
      const { out, stream } = translate(
        log().sources(sources).token(answer).completed(answer, sources).events,
      );
      const expected = [
        {
          type: 'file_citation',
          file_id: 'doc-1',
          filename: 'Guide',
          index: answer.indexOf('[1]'),
        },
        // A source without a title is named by its document id.
        {
          type: 'file_citation',
          file_id: 'doc-2',
          filename: 'doc-2',
          index: answer.indexOf('[2]'),
        },
        {
          type: 'file_citation',
          file_id: 'doc-1',
          filename: 'Guide',
          index: answer.lastIndexOf('[1]'),
        },
      ];
      const added = out.filter((e) => e.type === 'response.output_text.annotation.added');
      expect(added.map((e) => e.annotation)).toEqual(expected);
      expect(added.map((e) => e.annotation_index)).toEqual([0, 1, 2]);
      // `[9]` has no source: no annotation for it.
      expect(stream.snapshot().output[0]!.content[0]!.annotations).toEqual(expected);
    });

    it('cites the completed result’s sources, not only the earlier sources event', () => {
      const { out } = translate(
        log()
          .token('See [1].')
          .completed('See [1].', [source(7)]).events,
      );
      const added = out.filter((e) => e.type === 'response.output_text.annotation.added');
      expect(added.map((e) => e.annotation)).toEqual([
        { type: 'file_citation', file_id: 'doc-7', filename: 'doc-7', index: 4 },
      ]);
    });
  });

  it('ends a failed question with response.failed and its error', () => {
    const { out, stream } = translate(
      log().status('active').token('Par').failed('LLM_TIMEOUT', 'the model did not answer').events,
    );
    expect(types(out).slice(-3)).toEqual([
      'response.content_part.done',
      'response.output_item.done',
      'response.failed',
    ]);
    expect(out.at(-1)!.response).toMatchObject({
      status: 'failed',
      error: { code: 'llm_timeout', message: 'the model did not answer' },
      output_text: '',
    });
    expect(stream.snapshot().status).toBe('failed');
  });

  it('ends a cancelled question with response.incomplete, status cancelled', () => {
    const { out } = translate(log().status('active').token('Par').cancelled().events);
    expect(out.at(-1)).toMatchObject({
      type: 'response.incomplete',
      response: { status: 'cancelled', error: null, output_text: '' },
    });
    expect(out.at(-2)).toMatchObject({
      type: 'response.output_item.done',
      item: { status: 'incomplete' },
    });
  });

  describe('with the OpenAI SDK’s accumulator', () => {
    // What a client that builds the response from the events (client.responses.stream) ends with.
    it('rebuilds the answer', () => {
      const snapshot = accumulate(translate(answered()).out);
      expect(snapshot.output_text).toBe('Paris is the capital [1].');
      expect(snapshot.status).toBe('completed');
    });

    it('rebuilds only the answer that stands after a retry, at every step', () => {
      // Checked after each askq event, not only at the end: response.completed replaces the
      // client's snapshot wholesale, which would hide a wrong text built from the deltas.
      const events = retried();
      const stream = createResponseStream(identity);
      let snapshot: Response | undefined;
      for (const e of events) {
        for (const out of stream.push(e)) {
          snapshot = accumulateResponse(out as unknown as ResponseStreamEvent, snapshot);
        }
        expect(snapshot!.output_text).toBe(stream.snapshot().output_text);
        expect(snapshot!.output).toEqual(stream.snapshot().output);
      }
      expect(snapshot!.output_text).toBe('Paris is in France [1].');
    });

    it('rebuilds a final answer that differs from its tokens', () => {
      const events = log().token('Paris is in Spain').completed('Paris is in France.').events;
      const out = translate(events).out;
      // Without the lifecycle event at the end: the text built from the deltas alone.
      const beforeCompleted = accumulate(out.slice(0, -1));
      expect(beforeCompleted.output_text).toBe('Paris is in France.');
      expect(accumulate(out).output_text).toBe('Paris is in France.');
    });

    it('rebuilds an empty text for a failed question that had streamed tokens', () => {
      const out = translate(log().token('Par').failed('INTERNAL', 'boom').events).out;
      const snapshot = accumulate(out);
      expect(snapshot.output_text).toBe('');
      expect(snapshot.status).toBe('failed');
    });
  });
});

describe('response ids and frames', () => {
  it('prefixes a question id, and reads it back', () => {
    expect(responseIdOf('q-1')).toBe('resp_q-1');
    expect(questionIdOf('resp_q-1')).toBe('q-1');
    expect(questionIdOf('q-1')).toBeUndefined();
  });

  it('names each SSE frame by its event type', () => {
    const event = { type: 'response.output_text.delta', sequence_number: 4, delta: 'x' };
    expect(responseFrame(event)).toBe(
      `event: response.output_text.delta\ndata: ${JSON.stringify(event)}\n\n`,
    );
  });
});
