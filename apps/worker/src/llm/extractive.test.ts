import type { Source } from '@askq/shared';
import { describe, expect, it } from 'vitest';
import type { GenerationChunk } from './chat-model.js';
import { createExtractiveModel, extract, NO_ANSWER } from './extractive.js';

const source = (text: string, score = 0.8): Source => ({
  documentId: 'd',
  chunkId: 'c',
  text,
  score,
});

const SOURCES = [
  source(
    'Workers block on Redis and never poll. Each worker runs eight questions at once by default.',
  ),
  source(
    'The exact cache keeps answers for 900 seconds by default. Only answers that passed validation are cached.',
  ),
  source('Grafana shows a provisioned dashboard. Prometheus scrapes every process.'),
];

async function collect(
  question: string,
  sources: Source[],
  signal = new AbortController().signal,
  maxSentences?: number,
): Promise<GenerationChunk[]> {
  const model = createExtractiveModel(maxSentences === undefined ? {} : { maxSentences });
  const chunks: GenerationChunk[] = [];
  for await (const chunk of model.stream({ question, sources, route: 'fast', signal })) {
    chunks.push(chunk);
  }
  return chunks;
}

const answerOf = (chunks: GenerationChunk[]): string =>
  chunks.map((c) => (c.type === 'token' ? c.text : '')).join('');

describe('createExtractiveModel', () => {
  it('reports model extractive for both routes', () => {
    const model = createExtractiveModel();
    expect(model.modelFor('fast')).toBe('extractive');
    expect(model.modelFor('smart')).toBe('extractive');
  });

  it('answers with the most relevant sentence first, cited with its source number', async () => {
    const answer = answerOf(await collect('How long does the cache keep answers?', SOURCES));
    expect(answer.startsWith('The exact cache keeps answers for 900 seconds by default. [2]')).toBe(
      true,
    );
    expect(answer).not.toContain('Grafana');
    expect(answer).not.toMatch(/\[(1|3)\]/);
  });

  it('cites each sentence with the source it came from', async () => {
    const answer = answerOf(await collect('Which workers cache answers?', SOURCES, undefined, 5));
    // "sentence [n] sentence [m]": split at the markers, keeping each marker's number.
    const parts = answer.split(/ \[(\d)\]/);
    for (let i = 0; i + 1 < parts.length; i += 2) {
      expect(SOURCES[Number(parts[i + 1]) - 1]?.text).toContain(parts[i]!.trim());
    }
    expect(answer).toMatch(/\[1\]/);
    expect(answer).toMatch(/\[2\]/);
  });

  it('honours maxSentences and drops near-duplicate sentences', async () => {
    const duplicated = [
      source('Redis keeps the queues durable.'),
      source('Redis keeps the queues durable!'),
      source('Redis keeps queues on disk with AOF.'),
    ];
    const answer = answerOf(await collect('Does Redis keep the queues durable?', duplicated));
    expect(answer.match(/Redis keeps the queues durable/g)).toHaveLength(1);
    const one = answerOf(
      await collect('Does Redis keep the queues durable?', duplicated, undefined, 1),
    );
    expect(one).toBe('Redis keeps the queues durable. [1]');
  });

  it('prefers a full sentence to a heading or fragment with the same words', async () => {
    const sources = [source('# Scaling askq workers\n\nAdd workers to scale askq.')];
    const answer = answerOf(await collect('How do I scale askq workers?', sources, undefined, 1));
    expect(answer).toBe('Add workers to scale askq. [1]');
  });

  it('streams one word per token and the tokens join to the answer, then reports usage', async () => {
    const chunks = await collect('How long does the cache keep answers?', SOURCES);
    const tokens = chunks.filter((c) => c.type === 'token');
    const last = chunks.at(-1);
    expect(tokens.length).toBeGreaterThan(5);
    for (const t of tokens) expect(t.text.trim()).toMatch(/^\S+$/);
    expect(answerOf(chunks)).toMatch(/^The exact cache .*\[2\]$/);
    expect(last).toEqual({
      type: 'usage',
      promptTokens: 7 + 16 + 17 + 9,
      completionTokens: tokens.length,
    });
    expect(chunks.filter((c) => c.type === 'usage')).toHaveLength(1);
  });

  it('says the sources do not contain the answer when nothing matches', async () => {
    for (const sources of [[], SOURCES]) {
      const chunks = await collect('What colour is the logo?', sources);
      expect(answerOf(chunks)).toBe(NO_ANSWER);
      expect(answerOf(chunks)).not.toMatch(/\[\d\]/);
    }
  });

  it('stops without throwing when the signal aborts mid-stream', async () => {
    const controller = new AbortController();
    const model = createExtractiveModel();
    const seen: GenerationChunk[] = [];
    for await (const chunk of model.stream({
      question: 'How long does the cache keep answers?',
      sources: SOURCES,
      route: 'fast',
      signal: controller.signal,
    })) {
      seen.push(chunk);
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toHaveLength(2);
    expect(seen.every((c) => c.type === 'token')).toBe(true);
  });

  it('yields nothing when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    expect(
      await collect('How long does the cache keep answers?', SOURCES, controller.signal),
    ).toEqual([]);
  });

  it('lets other work run between tokens', async () => {
    const controller = new AbortController();
    // Aborts from the event loop, which a generator that never yields to it would starve.
    setImmediate(() => controller.abort());
    const chunks = await collect(
      'How long does the cache keep answers?',
      SOURCES,
      controller.signal,
    );
    expect(chunks.length).toBeLessThan(3);
  });
});

describe('extract for a follow-up', () => {
  const ferries = [
    source('The Oban ferry to Mull sails to Craignure. The crossing takes 46 minutes.', 0.6),
    source('The Mallaig ferry to Skye sails to Armadale. The crossing takes 30 minutes.', 0.59),
  ];

  it('answers from the passages about the conversation’s subject only', () => {
    const answer = extract({
      question: 'How long does the crossing take?',
      standalone: 'How long does the crossing take? (ferry skye mallaig)',
      sources: ferries,
      maxSentences: 3,
    });
    expect(answer).toContain('30 minutes. [2]');
    expect(answer).not.toContain('46 minutes');
  });

  it('answers from every passage when the standalone form names nothing they hold', () => {
    const answer = extract({
      question: 'How long does the crossing take?',
      standalone: 'How long does the crossing take? (weather)',
      sources: ferries,
      maxSentences: 3,
    });
    expect(answer).toContain('46 minutes');
    expect(answer).toContain('30 minutes');
  });
});

describe('extract chooses by maximal marginal relevance', () => {
  const stream = source(
    'When the server shuts down, every event stream ends with a shutdown event. ' +
      'Streams are resumed with the Last-Event-ID header. ' +
      'The stream format is plain text.',
    0.5,
  );

  it('opens with the sentence that answers, matching inflected forms', () => {
    const answer = extract({
      question: 'How do I resume an event stream?',
      sources: [stream],
      maxSentences: 3,
    });
    expect(answer.startsWith('Streams are resumed with the Last-Event-ID header. [1]')).toBe(true);
  });

  it('leaves out a sentence that repeats what is chosen or adds no part of the question', () => {
    const answer = extract({
      question: 'How do I resume an event stream?',
      sources: [stream, source('Streams are resumed with the Last-Event-ID header.', 0.4)],
      maxSentences: 3,
    });
    // Said once, from the first passage; the format sentence answers nothing asked.
    expect(answer.match(/Last-Event-ID/g)).toHaveLength(1);
    expect(answer).not.toContain('plain text');
  });
});

describe('extract quotes a source’s own citation marks as text', () => {
  it('leaves no citation in the answer but the ones it adds', () => {
    const answer = extract({
      question: 'How long do refunds take?',
      sources: [source('Refunds take 14 days, see [2] and [3].')],
      maxSentences: 3,
    });
    expect(answer).toBe('Refunds take 14 days, see (2) and (3). [1]');
  });
});

describe('extract reads a passage’s headings', () => {
  // Two sentences that hold the same question word; only one is under a heading about it.
  const guide = source(
    '## Shutting down\n\nThe API ends every connection on shutdown.\n\n' +
      '## Reconnecting\n\nA client sends the last id it saw on each connection.',
  );

  it('prefers the sentence under a heading that holds the rest of the question', () => {
    const answer = extract({
      question: 'How do I handle reconnecting a connection?',
      sources: [guide],
      maxSentences: 1,
    });
    expect(answer).toBe('A client sends the last id it saw on each connection. [1]');
  });

  it('never quotes a heading as an answer', () => {
    const answer = extract({
      question: 'Reconnecting and shutting down?',
      sources: [guide],
      maxSentences: 3,
    });
    expect(answer).not.toMatch(/(^|\] )(Reconnecting|Shutting down) \[/);
  });
});
