// The tasks of the content pool: CPU-bound work on text that users wrote, run on worker threads
// (content-pool.ts) so that the worker's event loop, which renews job locks and serves /healthz,
// never waits for it. Each task first records when it started, so its time budget counts running
// time only, not time spent queued behind other tasks.
import { getPriority, setPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import { move, workerData } from 'piscina';
import type { Validation } from '@askq/shared';
import { hashEmbed } from '../embeddings/hash-embedder.js';
import { createChunker, withTerms, type Chunk } from '../knowledge/chunker.js';
import { extract as extractAnswer, type ExtractInput } from '../llm/extractive.js';
import { validateAnswer, type ValidateInput } from '../stages/validate.js';

/** What every task carries besides its input: its slot in the pool's start-time table. */
export interface TaskEnvelope {
  slot: number;
}

/** Shared with the pool: the start time of the task in each slot, epoch ms (0: not started). */
export interface PoolData {
  started: SharedArrayBuffer;
  /** The threads' niceness (Linux: per thread), 0 to leave it as the process's. */
  nice: number;
}

const { started, nice } = workerData as PoolData;
const startedAt = new BigInt64Array(started);
// Pid 0 is the calling thread on Linux: only this thread yields, not the event loop's.
if (nice !== 0) {
  try {
    setPriority(0, nice);
  } catch {
    // Lowering one's own priority is always allowed; a platform without it just runs at par.
  }
}

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
  // The chunks' index terms are counted here too, while the text is on this thread anyway.
  return withTerms(createChunker(input)(input.documentId, input.text));
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
export function probe(input: TaskEnvelope): { threadId: number; priority: number } {
  begin(input);
  return { threadId, priority: getPriority(0) };
}
