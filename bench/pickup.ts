// pickup: how soon a worker starts a question. askq: client POST -> the `status: active` event at
// the client, and the server's own `timings.queueMs` (enqueue -> attempt start, integer ms), one
// question at a time, API and worker as separate processes. Beside it, raw BullMQ in this process:
// `queue.add()` called -> processor starts, one job at a time with the worker idle in between.
import { ratio, summarize } from './lib.js';
import { ask, questionMaker, startAskqStack, startRawBullmq } from './overhead.js';
import type { BenchOptions } from './run.js';

export async function pickup(options: BenchOptions) {
  const questions = options.requests;
  const warmup = options.smoke ? 3 : 30;
  const stack = await startAskqStack();
  try {
    const { url } = stack.processes;
    const next = questionMaker();
    for (let i = 0; i < warmup; i++) await ask(url, { question: next(-1 - i), model: 'fast' });
    const toActive: number[] = [];
    const post: number[] = [];
    const queueMs: number[] = [];
    for (let i = 0; i < questions; i++) {
      const asked = await ask(url, { question: next(i), model: 'fast' });
      toActive.push(asked.active - asked.t0);
      post.push(asked.posted - asked.t0);
      queueMs.push(asked.result.timings.queueMs);
    }
    const askq = {
      postToActiveEventMs: summarize(toActive),
      postResponseMs: summarize(post),
      serverQueueMs: summarize(queueMs),
    };

    // Raw BullMQ: add() -> processor start; the next add waits until the worker is idle again.
    let onStart: (at: number) => void = () => undefined;
    const raw = await startRawBullmq(stack.services.redisUrl, () => onStart(performance.now()));
    let reference;
    try {
      const once = async () => {
        const started = new Promise<number>((resolve) => (onStart = resolve));
        const done = new Promise<void>((resolve) => raw.worker.once('completed', () => resolve()));
        const t0 = performance.now();
        await raw.queue.add('job', { n: 1 });
        const added = performance.now();
        const at = await started;
        await done;
        return { pickup: at - t0, add: added - t0 };
      };
      for (let i = 0; i < warmup; i++) await once();
      const picked: number[] = [];
      const added: number[] = [];
      for (let i = 0; i < questions; i++) {
        const r = await once();
        picked.push(r.pickup);
        added.push(r.add);
      }
      reference = {
        what: 'raw BullMQ in this process: queue.add() called -> processor start, worker idle before each add',
        addToStartMs: summarize(picked),
        addCallMs: summarize(added),
      };
    } finally {
      await raw.stop();
    }

    return {
      bench: 'pickup',
      questions,
      concurrency: 1,
      note: 'one question at a time; unique questions with cache: false; fake LLM answers at once',
      askq,
      reference,
      target: { pickupP99Ms: 10 },
      ratio: {
        activeEventP50: ratio(askq.postToActiveEventMs.p50, reference.addToStartMs.p50),
        activeEventP99: ratio(askq.postToActiveEventMs.p99, reference.addToStartMs.p99),
        serverQueueP50: ratio(askq.serverQueueMs.p50, reference.addToStartMs.p50),
        serverQueueP99: ratio(askq.serverQueueMs.p99, reference.addToStartMs.p99),
      },
    };
  } finally {
    await stack.stop();
  }
}
