// The tasks of the content pool: CPU-bound work on text that users wrote, run on worker threads
// (content-pool.ts) so that the worker's event loop, which renews job locks and serves /healthz,
// never waits for it. Each task first records when it started, so its time budget counts running
// time only, not time spent queued behind other tasks.
import { threadId } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import type { Validation } from '@askq/shared';
import { hashEmbed } from '../embeddings/hash-embedder.js';
import { createChunker, type Chunk } from '../knowledge/chunker.js';
import { extract as extractAnswer, type ExtractInput } from '../llm/extractive.js';
import { validateAnswer, type ValidateInput } from '../stages/validate.js';

/** What every task carries besides its input: its slot in the pool's start-time table. */
export interface TaskEnvelope {
  slot: number;
}

/** Shared with the pool: the start time of the task in each slot, epoch ms (0: not started). */
export interface PoolData {
  started: SharedArrayBuffer;
}

const { started } = workerData as PoolData;
const startedAt = new BigInt64Array(started);

function begin(envelope: TaskEnvelope): void {
  Atomics.store(startedAt, envelope.slot, BigInt(Date.now()));
}

export function chunk(
  input: TaskEnvelope & {
    documentId: string;
    text: string;
    chunkSize: number;
    chunkOverlap: number;
  },
): Chunk[] {
  begin(input);
  return createChunker(input)(input.documentId, input.text);
}

/** Vectors packed into one buffer (row after row), moved to the caller rather than copied. */
export function embedHash(input: TaskEnvelope & { texts: string[]; dimension: number }) {
  begin(input);
  const packed = new Float64Array(input.texts.length * input.dimension);
  hashEmbed(input.texts, input.dimension).forEach((vector, i) =>
    packed.set(vector, i * input.dimension),
  );
  return move(packed);
}

export function validate(input: TaskEnvelope & ValidateInput): Validation {
  begin(input);
  return validateAnswer(input);
}

export function extract(input: TaskEnvelope & ExtractInput): string {
  begin(input);
  return extractAnswer(input);
}

/** Which thread ran it: the pool checks at start that its threads load, tests that they are used. */
export function probe(input: TaskEnvelope): { threadId: number } {
  begin(input);
  return { threadId };
}
