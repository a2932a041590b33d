import { getPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '@askq/shared';
import { createContentPool, type ContentPool } from './content-pool.js';
import { hashEmbed } from '../embeddings/hash-embedder.js';
import { createChunker, withTerms } from '../knowledge/chunker.js';
import { extract } from '../llm/extractive.js';
import { validateAnswer } from '../stages/validate.js';

const SIZES = { chunkSize: 800, chunkOverlap: 120 };
// ICU's worst case, made linear by windows, but still a few hundred milliseconds per MiB.
const heavy = (bytes: number) => 'Ab. '.repeat(bytes / 4);

let pool: ContentPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('createContentPool', () => {
  it('lowers its threads’ priority when asked, and only theirs', async () => {
    pool = createContentPool({
      ...SIZES,
      threads: 1,
      budgetMs: 10_000,
      maxMemoryMb: 256,
      nice: 10,
    });
    const before = getPriority(0);
    expect((await pool.probe()).priority).toBe(Math.max(before, 10));
    // The event loop's thread keeps its own.
    expect(getPriority(0)).toBe(before);
  });

  it('runs the work on another thread, with the same results as on this one', async () => {
    pool = createContentPool({ ...SIZES, threads: 2, budgetMs: 10_000, maxMemoryMb: 256 });
    const used = await pool.probe();
    expect(used.threadId).not.toBe(threadId);
    // The same functions, called here.
    const text = 'Redis keeps the queue. Chroma keeps the vectors. '.repeat(60);
    expect(await pool.chunk('doc', text)).toEqual(withTerms(createChunker(SIZES)('doc', text)));
    const texts = ['redis queue', 'chroma vectors', ''];
    expect(await pool.embedHash(texts, 64)).toEqual(hashEmbed(texts, 64));
    const sources = [{ documentId: 'd', chunkId: 'd#0', text, score: 0.5 }];
    expect(await pool.extract({ question: 'Where is the queue?', sources, maxSentences: 3 })).toBe(
      extract({ question: 'Where is the queue?', sources, maxSentences: 3 }),
    );
    const answer = {
      answer: 'Redis keeps the queue. [1]',
      sources,
      maxAnswerChars: 100,
      groundingThreshold: 0.5,
    };
    expect(await pool.validate(answer)).toEqual(validateAnswer(answer));
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
    // The thread is up (its loader and code loaded), so what is timed below is the task.
    await pool.probe();
    const started = performance.now();
    const error = await pool.chunk('doc', heavy(4 * 1_048_576)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('CONTENT_TOO_COMPLEX');
    expect((error as AppError).retryable).toBe(false);
    // Ended near its budget, not after the seconds the whole text would take.
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(await pool.chunk('doc', 'A short one.')).toHaveLength(1);
    expect(outcomes).toEqual(['probe:ok', 'chunk:too_complex', 'chunk:ok']);
  });

  it('counts only running time against the budget, not the wait in the queue', async () => {
    const text = heavy(256 * 1_024);
    const probe = createContentPool({ ...SIZES, threads: 1, budgetMs: 60_000, maxMemoryMb: 256 });
    await probe.chunk('warm', text);
    const began = performance.now();
    await probe.chunk('doc', text);
    const one = performance.now() - began;
    await probe.close();
    // Eight such tasks on one thread, with a budget of four: each runs well within it (a task
    // would have to run four times slower than just measured to miss it), while the last waits
    // seven of them in the queue, nearly twice the budget.
    pool = createContentPool({
      ...SIZES,
      threads: 1,
      budgetMs: Math.max(50, 4 * one),
      maxMemoryMb: 256,
    });
    await pool.probe();
    const tasks = Array.from({ length: 8 }, (_, n) => n);
    const results = await Promise.all(tasks.map((n) => pool!.chunk(`doc${n}`, text)));
    expect(results.every((chunks) => chunks.length > 0)).toBe(true);
  });

  it('ends a running task when the caller aborts, with the caller’s reason', async () => {
    pool = createContentPool({ ...SIZES, threads: 1, budgetMs: 60_000, maxMemoryMb: 256 });
    await pool.probe();
    const controller = new AbortController();
    // Seconds of work on an idle, warm thread: it is running when the abort comes.
    const pending = pool.chunk('doc', heavy(8 * 1_048_576), controller.signal);
    setTimeout(() => controller.abort(new Error('cancelled')), 100);
    const started = performance.now();
    await expect(pending).rejects.toThrow('cancelled');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(await pool.chunk('doc', 'Still here.')).toHaveLength(1);
  });
});
