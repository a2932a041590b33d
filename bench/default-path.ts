// default-path: what the answer cache costs a question it cannot answer. A new question with the
// default options (cache on: the exact lookup, the in-flight registration, the semantic lookup,
// and both cache writes) against the same kind of question with `cache: false`, one at a time,
// in alternating blocks in the same run so that both see the same machine. Also checks the
// promise the cache keeps: a rewording asked on seeing `completed` is answered from it.
import { cpuMs, ratio, summarize } from './lib.js';
import { ask, questionMaker, startAskqStack } from './overhead.js';
import type { BenchOptions } from './run.js';

const BLOCK = 50;

export async function defaultPath(options: BenchOptions) {
  const questions = options.smoke ? 20 : options.requests;
  const stack = await startAskqStack();
  try {
    const { url, apiPid, workerPid } = stack.processes;
    const next = questionMaker();
    const sides = {
      cacheOn: { e2e: [] as number[], retrieval: [] as number[], cpu: 0, n: 0 },
      cacheOff: { e2e: [] as number[], retrieval: [] as number[], cpu: 0, n: 0 },
    };
    for (let i = 0; i < (options.smoke ? 4 : 40); i++) {
      await ask(url, { question: next(-1 - i), model: 'fast', cache: i % 2 === 0 });
    }
    let asked = 0;
    for (let block = 0; asked < questions * 2; block++) {
      const cache = block % 2 === 0;
      const side = cache ? sides.cacheOn : sides.cacheOff;
      const size = Math.min(options.smoke ? 5 : BLOCK, questions - side.n);
      if (size <= 0) continue;
      const before = (await cpuMs(apiPid)) + (await cpuMs(workerPid));
      for (let i = 0; i < size; i++) {
        // Default options but `model`, which keeps the route (and the fake model's cost) the
        // same; `cache: true` is the default, spelled out (the bench's ask() turns it off).
        const body = { question: next(asked), model: 'fast', cache };
        const one = await ask(url, body);
        side.e2e.push(one.completed - one.t0);
        side.retrieval.push(one.result.timings.retrievalMs);
        asked++;
      }
      side.cpu += (await cpuMs(apiPid)) + (await cpuMs(workerPid)) - before;
      side.n += size;
    }

    // The promise: asked again in other words the moment `completed` arrives, it is a hit.
    let rewordingsHit = 0;
    const rewordings = options.smoke ? 3 : 20;
    for (let i = 0; i < rewordings; i++) {
      const question = `Which process streams the answers of topic ${i} of run ${Date.now()}?`;
      await ask(url, { question, model: 'fast', cache: true });
      const again = await ask(url, { question: `${question} Please.`, model: 'fast', cache: true });
      if (again.result.cached) rewordingsHit++;
    }

    const on = summarize(sides.cacheOn.e2e);
    const off = summarize(sides.cacheOff.e2e);
    const cpuOn = sides.cacheOn.cpu / sides.cacheOn.n;
    const cpuOff = sides.cacheOff.cpu / sides.cacheOff.n;
    return {
      bench: 'default-path',
      questions,
      note: `one at a time, blocks of ${BLOCK} alternating between the default options and cache: false; every question new, so every lookup a miss; the fake LLM answers at once`,
      askq: {
        e2eMs: on,
        retrievalMs: summarize(sides.cacheOn.retrieval),
        cpuMsPerQuestion: Number(cpuOn.toFixed(3)),
        rewordingsAnsweredFromCache: `${rewordingsHit}/${rewordings}`,
      },
      reference: {
        what: 'the same questions with cache: false, same run',
        e2eMs: off,
        retrievalMs: summarize(sides.cacheOff.retrieval),
        cpuMsPerQuestion: Number(cpuOff.toFixed(3)),
      },
      target: { e2eP50: 1.3, cpu: 1.2 },
      ratio: {
        e2eP50: ratio(on.p50, off.p50),
        e2eP99: ratio(on.p99, off.p99),
        cpu: ratio(cpuOn, cpuOff),
      },
    };
  } finally {
    await stack.stop();
  }
}
