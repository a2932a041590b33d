import type { Validation } from '@askq/shared';
import type { Chunk } from '../knowledge/chunker.js';
import type { ExtractInput } from '../llm/extractive.js';
import type { ValidateInput } from '../stages/validate.js';

/**
 * The CPU-bound work askq does on text users wrote. The worker runs it on a pool of threads
 * (content-pool.ts); every call may reject with `CONTENT_TOO_COMPLEX` when it runs past
 * its time budget, or with the signal's reason when it is aborted.
 */
export interface ContentWork {
  chunk(documentId: string, text: string, signal?: AbortSignal): Promise<Chunk[]>;
  embedHash(texts: string[], dimension: number, signal?: AbortSignal): Promise<number[][]>;
  validate(input: ValidateInput, signal?: AbortSignal): Promise<Validation>;
  extract(input: ExtractInput, signal?: AbortSignal): Promise<string>;
}
