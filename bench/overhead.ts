// overhead: askq's own time per question outside retrieval and the LLM (client-measured POST ->
// `completed` minus the stage timings), with an instant OpenAI-compatible server, one question at a
// time; and the CPU milliseconds per question of the API and worker processes. Beside it, raw
// BullMQ's round trip (add -> the producer hears `completed` through QueueEvents) with a no-op
// processor, and its CPU per job in this process.
// Also home of the helpers the pickup and throughput benches share.
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createFakeLlm, type FakeLlm } from '../test/support/fake-llm.js';
import {
  cpuMs,
  followUntilDone,
  ratio,
  startBenchProcesses,
  startServices,
  summarize,
} from './lib.js';
import type { BenchOptions } from './run.js';
import { send } from './http-client.js';
import { floorOfStack } from './client-floor.js';

/** The collection the benches seed and ask. */
export const BENCH_COLLECTION = 'bench';

/** A sentence every seeded document holds, so the fake LLM's answer passes grounding. */
const SHARED_SENTENCE = 'Workers stream answers to clients as they are generated.';

/** The fake LLM's answer: grounded in every document and citing [1], so validation passes. */
export const GROUNDED_ANSWER = 'Workers stream answers [1].';

const TOPICS = [
  'queues carry questions from the API to the workers in Redis',
  'retrieval embeds the question and finds the closest chunks in Chroma',
  'the event stream can be resumed with the Last-Event-ID header',
  'validation checks citations, length and grounding of every answer',
  'the exact cache answers a repeated question directly from Redis',
  'the semantic cache matches questions by meaning within one collection',
  'tokens are batched and flushed every fifty milliseconds',
  'a worker that crashes loses nothing because the job runs again',
  'rate limits protect each tenant from the others',
  'ingestion chunks documents and stores their vectors',
];

/** Environment for the bench's API and worker processes: limits out of the way, the given LLM. */
export function benchEnv(llmBaseUrl: string, extra: Record<string, string> = {}) {
  return {
    LLM_BASE_URL: llmBaseUrl,
    RATE_LIMIT_PER_MINUTE: '100000000',
    READ_RATE_LIMIT_PER_MINUTE: '100000000',
    TENANT_MAX_INFLIGHT: '100000',
    TENANT_MAX_STREAMS: '1000000',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Ten short documents in the bench collection; resolves when their ingestion has completed. */
export async function seedCollection(url: string): Promise<number> {
  const documents = TOPICS.map((topic, i) => ({
    id: `doc-${i}`,
    title: `Topic ${i}`,
    text: `In askq, ${topic}. ${SHARED_SENTENCE} This document is number ${i} of the bench corpus.`,
  }));
  const res = await fetch(`${url}/v1/documents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ collection: BENCH_COLLECTION, documents }),
  });
  if (res.status !== 202) throw new Error(`POST /v1/documents: ${res.status} ${await res.text()}`);
  const { ingestionId } = (await res.json()) as { ingestionId: string };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const state = (await (await fetch(`${url}/v1/ingestions/${ingestionId}`)).json()) as {
      status: string;
    };
    if (state.status === 'completed') return documents.length;
    if (state.status === 'failed') throw new Error(`ingestion ${ingestionId} failed`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`ingestion ${ingestionId} did not complete within 60 s`);
}

/** A fresh question each call (no cache can answer it), about the seeded corpus. */
export function questionMaker() {
  const run = randomUUID().slice(0, 8);
  return (i: number) =>
    `Question ${run}-${i}: how do workers stream answers about ${TOPICS[i % TOPICS.length]}?`;
}

/** What the result of a completed question holds that the benches read. */
export interface BenchResult {
  model: string;
  cached: boolean;
  validation: { passed: boolean };
  timings: {
    queueMs: number;
    retrievalMs: number;
    generationMs: number;
    validationMs: number;
    totalMs: number;
  };
}

/** One question asked and followed to its end; times are performance.now() of this process. */
export interface Asked {
  t0: number;
  posted: number;
  active: number;
  completed: number;
  retries: number;
  result: BenchResult;
}

/** POSTs a question (t0 just before) and follows its event stream until `completed`. */
export async function ask(
  url: string,
  body: Record<string, unknown>,
  onEvent?: (event: string, data: string, at: number) => void,
): Promise<Asked> {
  const t0 = performance.now();
  const res = await send('POST', `${url}/v1/questions`, {
    collection: BENCH_COLLECTION,
    cache: false,
    ...body,
  });
  const posted = performance.now();
  if (res.status !== 202) throw new Error(`POST /v1/questions: ${res.status} ${res.text}`);
  const { links } = JSON.parse(res.text) as { links: { events: string } };
  let active: number | undefined;
  let completed: number | undefined;
  let result: BenchResult | undefined;
  let retries = 0;
  const terminal = await followUntilDone(url + links.events, (event, data, at) => {
    if (event === 'status' && active === undefined && data.includes('"status":"active"')) {
      active = at;
    } else if (event === 'retry') {
      retries++;
    } else if (event === 'completed') {
      completed = at;
      result = (JSON.parse(data) as { result: BenchResult }).result;
    }
    onEvent?.(event, data, at);
  });
  if (terminal !== 'completed' || !result || completed === undefined || active === undefined) {
    throw new Error(`question ended ${terminal} (active event seen: ${active !== undefined})`);
  }
  return { t0, posted, active, completed, retries, result };
}

/** Redis, Chroma, the fake LLM answering at once, askq's API and worker, a seeded collection. */
export async function startAskqStack(env: Record<string, string> = {}) {
  const services = await startServices();
  let llm: FakeLlm | undefined;
  let processes: Awaited<ReturnType<typeof startBenchProcesses>> | undefined;
  try {
    llm = await createFakeLlm();
    llm.reply(() => ({ text: GROUNDED_ANSWER }));
    processes = await startBenchProcesses(services, benchEnv(llm.baseURL, env));
    const documents = await seedCollection(processes.url);
    const stack = { services, llm, processes, documents };
    return {
      ...stack,
      async stop() {
        await stack.processes.stop().catch(() => undefined);
        await stack.llm.close().catch(() => undefined);
        await stack.services.stop();
      },
    };
  } catch (e) {
    await processes?.stop().catch(() => undefined);
    await llm?.close().catch(() => undefined);
    await services.stop();
    throw e;
  }
}

/** A BullMQ queue and worker in this process on the given Redis, under a prefix of their own. */
export async function startRawBullmq(
  redisUrl: string,
  processor: () => Promise<void> | void,
  options: { concurrency?: number; events?: boolean } = {},
) {
  const prefix = `raw-${randomUUID().slice(0, 8)}`;
  const producer = new Redis(redisUrl);
  const consumer = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const eventsConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('raw', { connection: producer, prefix });
  const worker = new Worker('raw', async () => processor(), {
    connection: consumer,
    prefix,
    concurrency: options.concurrency ?? 1,
    removeOnComplete: { count: 1000 },
  });
  const queueEvents = options.events
    ? new QueueEvents('raw', { connection: eventsConnection, prefix })
    : undefined;
  await Promise.all([
    queue.waitUntilReady(),
    worker.waitUntilReady(),
    queueEvents?.waitUntilReady(),
  ]);
  return {
    queue,
    worker,
    queueEvents,
    async stop() {
      await Promise.allSettled([worker.close(), queue.close(), queueEvents?.close()]);
      producer.disconnect();
      consumer.disconnect();
      eventsConnection.disconnect();
    },
  };
}

/** ms of CPU this process used, from process.cpuUsage(). */
export const selfCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1_000;
};

export async function overhead(options: BenchOptions) {
  const questions = options.requests;
  const warmup = options.smoke ? 3 : 30;
  const stack = await startAskqStack();
  try {
    const { url, apiPid, workerPid } = stack.processes;
    const next = questionMaker();
    // `--cache`: the default path of a new question (lookup, in-flight registration) instead.
    const askOne = (i: number) =>
      ask(url, { question: next(i), model: 'fast', cache: options.cache });
    for (let i = 0; i < warmup; i++) await askOne(-1 - i);

    const e2e: number[] = [];
    const stages: number[] = [];
    const over: number[] = [];
    const post: number[] = [];
    const queue: number[] = [];
    const serverOther: number[] = [];
    const retrieval: number[] = [];
    const generation: number[] = [];
    const validation: number[] = [];
    let escalations = 0;
    let failedValidation = 0;
    const cpuBefore = await Promise.all([
      cpuMs(apiPid),
      cpuMs(workerPid),
      cpuMs(stack.services.redisPid),
    ]);
    const started = performance.now();
    for (let i = 0; i < questions; i++) {
      const asked = await askOne(i);
      const t = asked.result.timings;
      const stageMs = t.retrievalMs + t.generationMs + t.validationMs;
      const total = asked.completed - asked.t0;
      e2e.push(total);
      stages.push(stageMs);
      over.push(total - stageMs);
      post.push(asked.posted - asked.t0);
      queue.push(t.queueMs);
      serverOther.push(t.totalMs - t.queueMs - stageMs);
      retrieval.push(t.retrievalMs);
      generation.push(t.generationMs);
      validation.push(t.validationMs);
      escalations += asked.retries;
      if (!asked.result.validation.passed) failedValidation++;
    }
    const seconds = (performance.now() - started) / 1_000;
    const cpuAfter = await Promise.all([
      cpuMs(apiPid),
      cpuMs(workerPid),
      cpuMs(stack.services.redisPid),
    ]);
    const perQuestion = (i: number) =>
      Number((((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) / questions).toFixed(3));
    const askq = {
      e2eMs: summarize(e2e),
      stagesMs: summarize(stages),
      overheadMs: summarize(over),
      breakdownMs: {
        post: summarize(post),
        queue: summarize(queue),
        serverOutsideStages: summarize(serverOther),
        retrieval: summarize(retrieval),
        generation: summarize(generation),
        validation: summarize(validation),
      },
      cpuMsPerQuestion: {
        api: perQuestion(0),
        worker: perQuestion(1),
        apiPlusWorker: Number((perQuestion(0) + perQuestion(1)).toFixed(3)),
        redis: perQuestion(2),
      },
      questionsPerSecond: Number((questions / seconds).toFixed(1)),
      escalations,
      failedValidation,
    };

    // Raw BullMQ: add -> the producer hears `completed` (QueueEvents), one at a time.
    const raw = await startRawBullmq(stack.services.redisUrl, () => undefined, { events: true });
    let reference;
    try {
      const events = raw.queueEvents;
      if (!events) throw new Error('no QueueEvents');
      const roundTrip = async () => {
        const t0 = performance.now();
        const job = await raw.queue.add('job', { n: 1 });
        await job.waitUntilFinished(events);
        return performance.now() - t0;
      };
      for (let i = 0; i < warmup; i++) await roundTrip();
      const trips: number[] = [];
      const selfBefore = selfCpuMs();
      const redisBefore = await cpuMs(stack.services.redisPid);
      for (let i = 0; i < questions; i++) trips.push(await roundTrip());
      const selfPerJob = (selfCpuMs() - selfBefore) / questions;
      const redisPerJob = ((await cpuMs(stack.services.redisPid)) - redisBefore) / questions;
      reference = {
        what: 'raw BullMQ add -> waitUntilFinished (QueueEvents), no-op processor, same process',
        roundTripMs: summarize(trips),
        cpuMsPerJob: {
          producerPlusWorker: Number(selfPerJob.toFixed(3)),
          redis: Number(redisPerJob.toFixed(3)),
        },
      };
    } finally {
      await raw.stop();
    }
    const floor = await floorOfStack(stack, BENCH_COLLECTION, questions, 1);

    return {
      bench: 'overhead',
      questions,
      cache: options.cache,
      concurrency: 1,
      note: 'one question at a time (concurrency 1); overhead = client POST -> completed event minus retrieval + generation + validation; the fake LLM answers at once with a grounded 4-word answer',
      documents: stack.documents,
      askq,
      reference,
      clientFloor: floor,
      targets: { overheadP50Ms: 3, cpuMsPerQuestion: 1.5 },
      ratio: {
        cpuVsClientFloor: ratio(askq.cpuMsPerQuestion.apiPlusWorker, floor.cpuMsPerQuestion),
        overheadP50VsBullmqRoundTrip: ratio(askq.overheadMs.p50, reference.roundTripMs.p50),
        overheadP99VsBullmqRoundTrip: ratio(askq.overheadMs.p99, reference.roundTripMs.p99),
        cpuVsBullmq: ratio(
          askq.cpuMsPerQuestion.apiPlusWorker,
          reference.cpuMsPerJob.producerPlusWorker,
        ),
        overheadP50VsTarget: ratio(askq.overheadMs.p50, 3),
        cpuVsTarget: ratio(askq.cpuMsPerQuestion.apiPlusWorker, 1.5),
      },
    };
  } finally {
    await stack.stop();
  }
}
