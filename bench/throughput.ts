// throughput: questions per second end to end (POST -> `completed` on the event stream) with an
// instant LLM server and a small collection, `concurrency` questions in flight, the worker running
// as many at once; CPU% of the API, the worker and Redis. Beside it, raw BullMQ at the same
// concurrency with a no-op processor: closed loop (add -> the worker's `completed`, `concurrency`
// in flight, as askq is driven) and a drain (addBulk everything, then count completions).
import { cpuMs, load, ratio, summarize } from './lib.js';
import { floorOfStack } from './client-floor.js';
import {
  ask,
  BENCH_COLLECTION,
  questionMaker,
  selfCpuMs,
  startAskqStack,
  startRawBullmq,
} from './overhead.js';
import type { BenchOptions } from './run.js';

const pct = (ms: number, seconds: number) => Number(((ms / (seconds * 1_000)) * 100).toFixed(1));

export async function throughput(options: BenchOptions) {
  const { requests: questions, concurrency } = options;
  const warmup = options.smoke ? 4 : Math.min(200, questions);
  const referenceJobs = options.smoke ? 200 : Math.max(questions, 20_000);
  const stack = await startAskqStack({ WORKER_CONCURRENCY: String(concurrency) });
  try {
    const { url, apiPid, workerPid } = stack.processes;
    const { redisPid, chromaPid } = stack.services;
    const next = questionMaker();
    let failedValidation = 0;
    const stages = {
      queue: [] as number[],
      retrieval: [] as number[],
      generation: [] as number[],
      validation: [] as number[],
    };
    let escalations = 0;
    const one = (offset: number) => async (i: number) => {
      const asked = await ask(url, { question: next(offset + i), model: 'fast' });
      if (!asked.result.validation.passed) failedValidation++;
      const t = asked.result.timings;
      stages.queue.push(t.queueMs);
      stages.retrieval.push(t.retrievalMs);
      stages.generation.push(t.generationMs);
      stages.validation.push(t.validationMs);
      escalations += asked.retries;
    };
    await load(warmup, concurrency, one(1_000_000_000));
    failedValidation = 0;
    escalations = 0;
    for (const list of Object.values(stages)) list.length = 0;
    const pids = [apiPid, workerPid, redisPid, chromaPid];
    const before = await Promise.all(pids.map(cpuMs));
    const clientBefore = selfCpuMs();
    const run = await load(questions, concurrency, one(0));
    const clientMs = selfCpuMs() - clientBefore;
    const after = await Promise.all(pids.map(cpuMs));
    const used = (i: number) => (after[i] ?? 0) - (before[i] ?? 0);
    const askq = {
      questionsPerSecond: run.perSecond,
      seconds: Number(run.seconds.toFixed(2)),
      latencyMs: summarize(run.latencies),
      serverTimingsMs: {
        queue: summarize(stages.queue),
        retrieval: summarize(stages.retrieval),
        generation: summarize(stages.generation),
        validation: summarize(stages.validation),
      },
      cpuPercent: {
        api: pct(used(0), run.seconds),
        worker: pct(used(1), run.seconds),
        redis: pct(used(2), run.seconds),
        chroma: pct(used(3), run.seconds),
        clientAndFakeLlm: pct(clientMs, run.seconds),
      },
      cpuMsPerQuestion: {
        api: Number((used(0) / questions).toFixed(3)),
        worker: Number((used(1) / questions).toFixed(3)),
        redis: Number((used(2) / questions).toFixed(3)),
        chroma: Number((used(3) / questions).toFixed(3)),
      },
      failedValidation,
      escalations,
    };

    // Raw BullMQ closed loop: `concurrency` producers, each add -> the worker's completed event.
    const waiting = new Map<string, () => void>();
    const raw = await startRawBullmq(stack.services.redisUrl, () => undefined, { concurrency });
    let reference;
    try {
      raw.worker.on('completed', (job) => {
        const resolve = waiting.get(job.id ?? '');
        waiting.delete(job.id ?? '');
        resolve?.();
      });
      // Our own job ids: the waiter is in place before the worker can possibly finish the job.
      let ids = 0;
      const roundTrip = async () => {
        const jobId = `j${ids++}`;
        const done = new Promise<void>((resolve) => waiting.set(jobId, resolve));
        await raw.queue.add('job', { n: 1 }, { jobId });
        await done;
      };
      await load(Math.min(1_000, referenceJobs), concurrency, roundTrip);
      const rawBefore = [selfCpuMs(), await cpuMs(redisPid)];
      const closed = await load(referenceJobs, concurrency, roundTrip);
      const rawAfter = [selfCpuMs(), await cpuMs(redisPid)];

      // Drain: everything queued at once, the worker at `concurrency`.
      let completed = 0;
      let allDone: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (allDone = resolve));
      raw.worker.removeAllListeners('completed');
      raw.worker.on('completed', () => {
        if (++completed === referenceJobs) allDone();
      });
      await raw.worker.pause();
      for (let i = 0; i < referenceJobs; i += 1_000) {
        const size = Math.min(1_000, referenceJobs - i);
        await raw.queue.addBulk(Array.from({ length: size }, () => ({ name: 'job', data: {} })));
      }
      const drainStart = performance.now();
      await raw.worker.resume();
      await finished;
      const drainSeconds = (performance.now() - drainStart) / 1_000;
      reference = {
        what: 'raw BullMQ in this process, no-op processor, worker concurrency = concurrency',
        jobs: referenceJobs,
        closedLoop: {
          jobsPerSecond: closed.perSecond,
          latencyMs: summarize(closed.latencies),
          cpuPercent: {
            producerPlusWorker: pct((rawAfter[0] ?? 0) - (rawBefore[0] ?? 0), closed.seconds),
            redis: pct((rawAfter[1] ?? 0) - (rawBefore[1] ?? 0), closed.seconds),
          },
        },
        drain: { jobsPerSecond: Number((referenceJobs / drainSeconds).toFixed(1)) },
      };
    } finally {
      await raw.stop();
    }
    const floor = await floorOfStack(
      stack,
      BENCH_COLLECTION,
      options.smoke ? 20 : 2_000,
      concurrency,
    );
    const apiPlusWorker = askq.cpuMsPerQuestion.api + askq.cpuMsPerQuestion.worker;

    return {
      bench: 'throughput',
      questions,
      concurrency,
      workerConcurrency: concurrency,
      warmup,
      note: 'end to end: POST -> completed event on the stream; unique questions, cache: false; fake LLM answers at once; API, worker, Redis and this client share the machine',
      documents: stack.documents,
      askq,
      reference,
      clientFloor: floor,
      target: { questionsPerSecond: 1_000 },
      ratio: {
        cpuVsClientFloor: ratio(apiPlusWorker, floor.cpuMsPerQuestion),
        vsClosedLoop: ratio(askq.questionsPerSecond, reference.closedLoop.jobsPerSecond),
        vsDrain: ratio(askq.questionsPerSecond, reference.drain.jobsPerSecond),
        vsTarget: ratio(askq.questionsPerSecond, 1_000),
      },
    };
  } finally {
    await stack.stop();
  }
}
