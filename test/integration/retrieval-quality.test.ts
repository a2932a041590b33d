import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Source } from '@askq/shared';
import { readDocuments } from '../../apps/worker/src/knowledge/seed.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { followEvents } from '../support/sse-client.js';

// Retrieval quality on a small corpus shipped with the tests: 24 documents, 67 questions written
// as users ask them (paraphrased, many sharing few words with the answer). Reports recall@4 and
// MRR; asserts a floor for the built-in `hash` embedder with hybrid retrieval so a regression
// fails the run. Measured: recall@4 1.000, top1 0.881 (docs/RETRIEVAL.md has the comparison).
const HASH_RECALL_AT_4_FLOOR = 0.9;
const fixtures = join(import.meta.dirname, '../fixtures/quality');

let askq: TestAskq;

beforeAll(async () => {
  askq = await startAskq();
  const view = await askq.seed(await readDocuments(join(fixtures, 'corpus')), 'quality');
  expect(view.status).toBe('completed');
});
afterAll(async () => {
  await askq?.stop();
});

it('finds the right document in the top 4 for most questions (hash embedder)', async () => {
  const questions = JSON.parse(await readFile(join(fixtures, 'questions.json'), 'utf8')) as Array<{
    question: string;
    documentId: string;
  }>;
  expect(questions.length).toBeGreaterThanOrEqual(30);
  const ranks: number[] = [];
  const misses: string[] = [];
  for (const { question, documentId } of questions) {
    const { events } = await askq.ask(question, { collection: 'quality', topK: 4 });
    const received = await followEvents(events);
    const { sources } = received.find((e) => e.event === 'sources')!.data as { sources: Source[] };
    // Several chunks of one document may rank; a document's rank is its first chunk's.
    const documents = [...new Set(sources.map((s) => s.documentId))];
    const rank = documents.indexOf(documentId) + 1;
    ranks.push(rank);
    if (rank === 0) misses.push(`${question} -> ${documents.join(', ')}`);
  }
  const recall = ranks.filter((r) => r > 0).length / ranks.length;
  const mrr = ranks.reduce((sum, r) => sum + (r > 0 ? 1 / r : 0), 0) / ranks.length;
  const top1 = ranks.filter((r) => r === 1).length / ranks.length;
  console.log(
    `retrieval quality (hash embedder, ${ranks.length} questions): recall@4=${recall.toFixed(3)} ` +
      `top1=${top1.toFixed(3)} MRR=${mrr.toFixed(3)}` +
      (misses.length ? `\n  misses:\n  ${misses.join('\n  ')}` : ''),
  );
  expect(recall).toBeGreaterThanOrEqual(HASH_RECALL_AT_4_FLOOR);
});
