import { threadId } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '@askq/shared';
import { createContentPool, type ContentPool } from './content-pool.js';
import { inlineContentWork } from './content-work.js';

const SIZES = { chunkSize: 800, chunkOverlap: 120 };
// ICU's worst case, made linear by windows, but still a few hundred milliseconds per MiB.
const heavy = (bytes: number) => 'Ab. '.repeat(bytes / 4);

let pool: ContentPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('createContentPool', () => {
  it('runs the work on another thread, with the same results as on this one', async () => {
    pool = createContentPool({ ...SIZES, threads: 2, budgetMs: 10_000, maxMemoryMb: 256 });
    const used = await pool.probe();
    expect(used).not.toBe(threadId);
    const inline = inlineContentWork(SIZES);
    const text = 'Redis keeps the queue. Chroma keeps the vectors. '.repeat(60);
    expect(await pool.chunk('doc', text)).toEqual(await inline.chunk('doc', text));
    const texts = ['redis queue', 'chroma vectors', ''];
    expect(await pool.embedHash(texts, 64)).toEqual(await inline.embedHash(texts, 64));
    const sources = [{ documentId: 'd', chunkId: 'd#0', text, score: 0.5 }];
    expect(await pool.extract('Where is the queue?', sources, 3)).toBe(
      await inline.extract('Where is the queue?', sources, 3),
    );
    const answer = { answer: 'Redis keeps the queue. [1]', sources, maxAnswerChars: 100 };
    expect(await pool.validate({ ...answer, groundingThreshold: 0.5 })).toEqual(
      await inline.validate({ ...answer, groundingThreshold: 0.5 }),
    );
  });

  it('ends a task past its budget as CONTENT_TOO_COMPLEX and goes on serving', async () => {
    const outcomes: string[] = [];
    pool = createContentPool({
      ...SIZES,
      threads: 1,
      budgetMs: 20,
      maxMemoryMb: 256,
      onTask: (task, outcome) => outcomes.push(`${task}:${outcome}`),
    });
    const started = performance.now();
    const error = await pool.chunk('doc', heavy(4 * 1_048_576)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('CONTENT_TOO_COMPLEX');
    expect((error as AppError).retryable).toBe(false);
    // Ended near its budget, not after the seconds the whole text would take.
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(await pool.chunk('doc', 'A short one.')).toHaveLength(1);
    expect(outcomes).toEqual(['chunk:too_complex', 'chunk:ok']);
  });

  it('counts only running time against the budget, not the wait in the queue', async () => {
    const text = heavy(256 * 1_024);
    const probe = createContentPool({ ...SIZES, threads: 1, budgetMs: 60_000, maxMemoryMb: 256 });
    await probe.chunk('warm', text);
    const began = performance.now();
    await probe.chunk('doc', text);
    const one = performance.now() - began;
    await probe.close();
    // Four such tasks on one thread: the last waits about three of them, over twice the budget.
    pool = createContentPool({
      ...SIZES,
      threads: 1,
      budgetMs: Math.max(50, 2 * one),
      maxMemoryMb: 256,
    });
    const results = await Promise.all([1, 2, 3, 4].map((n) => pool!.chunk(`doc${n}`, text)));
    expect(results.every((chunks) => chunks.length > 0)).toBe(true);
  });

  it('rejects with the caller’s reason when the caller aborts', async () => {
    pool = createContentPool({ ...SIZES, threads: 1, budgetMs: 60_000, maxMemoryMb: 256 });
    const controller = new AbortController();
    const pending = pool.chunk('doc', heavy(1_048_576), controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(pending).rejects.toThrow('cancelled');
    expect(await pool.chunk('doc', 'Still here.')).toHaveLength(1);
  });
});
