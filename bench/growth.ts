// growth: what stays flat as the data grows. At 1k, 10k and 100k chunks (smoke: far fewer):
// retrieval p50/p99 of askq's questions (the stage's own timing) against a raw `chromadb` query of
// the same collection with the same vectors, and the ingest rate of each step; then the semantic
// cache's lookup and store at 1k, 10k and 100k entries; and the Redis memory one finished question
// keeps. Chroma is the same server throughout; the LLM is a fake that answers at once.
import { ChromaClient } from 'chromadb';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createKeys, type CachedAnswer, type QuestionResult } from '@askq/shared';
import { createSemanticCache } from '../apps/worker/src/cache/semantic-cache.js';
import { hashEmbed } from '../apps/worker/src/embeddings/hash-embedder.js';
import { send } from './http-client.js';
import { benchDocument } from './ingest.js';
import { ratio, startBenchProcesses, startServices, summarize } from './lib.js';
import { ask, benchEnv, GROUNDED_ANSWER } from './overhead.js';
import { createFakeLlm } from '../test/support/fake-llm.js';
import type { BenchOptions } from './run.js';

const DIMENSION = 2048;
const PER_REQUEST = 100;

async function ingestUpTo(url: string, run: string, from: number, to: number) {
  const ids: string[] = [];
  const started = performance.now();
  for (let i = from; i < to; i += PER_REQUEST) {
    const documents = Array.from({ length: Math.min(PER_REQUEST, to - i) }, (_, k) =>
      benchDocument(i + k, run),
    );
    const res = await send('POST', `${url}/v1/documents`, { collection: 'growth', documents });
    if (res.status !== 202) throw new Error(`POST /v1/documents: ${res.status} ${res.text}`);
    ids.push((JSON.parse(res.text) as { ingestionId: string }).ingestionId);
  }
  let chunks = 0;
  for (const id of ids) {
    for (;;) {
      const view = JSON.parse((await send('GET', `${url}/v1/ingestions/${id}`)).text) as {
        status: string;
        chunksTotal: number;
      };
      if (view.status === 'failed') throw new Error(`ingestion ${id} failed`);
      if (view.status === 'completed') {
        chunks += view.chunksTotal;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { chunks, seconds: (performance.now() - started) / 1_000 };
}

export async function growth(options: BenchOptions) {
  // Chunks per step (a bench document is about 3.5 chunks) and semantic-cache entries per step.
  const chunkSteps = options.smoke ? [100, 300] : [1_000, 10_000, 100_000];
  const entrySteps = options.smoke ? [50, 150] : [1_000, 10_000, 100_000];
  const probes = options.smoke ? 10 : 200;
  const services = await startServices();
  const llm = await createFakeLlm();
  llm.reply(() => ({ text: GROUNDED_ANSWER }));
  const processes = await startBenchProcesses(
    services,
    benchEnv(llm.baseURL, {
      TENANT_MAX_QUEUED_INGESTIONS: '100000',
      RATE_LIMIT_PER_MINUTE: '1000000',
      TENANT_MAX_DOCUMENTS: '1000000',
    }),
  );
  const redis = new Redis(services.redisUrl);
  try {
    const { url } = processes;
    const run = randomUUID().slice(0, 8);
    const { hostname, port } = new URL(services.chromaUrl);
    const chroma = new ChromaClient({ host: hostname, port: Number(port), ssl: false });

    // Retrieval and ingestion as the collection grows.
    const retrieval = [];
    let documents = 0;
    let chunks = 0;
    for (const target of chunkSteps) {
      const upTo = Math.ceil(target / 3.46);
      const step = await ingestUpTo(url, run, documents, upTo);
      documents = upTo;
      chunks += step.chunks;
      const askqMs: number[] = [];
      for (let i = 0; i < probes; i++) {
        const question = `Which ${run} worker streams answer ${i} of ${target} about the harbour?`;
        const asked = await ask(url, {
          question,
          collection: 'growth',
          model: 'fast',
          cache: false,
        });
        askqMs.push(asked.result.timings.retrievalMs);
      }
      const collection = await chroma.getCollection({ name: 'askq.default.growth' });
      const rawMs: number[] = [];
      for (let i = 0; i < probes; i++) {
        const question = `Which ${run} worker streams answer ${i} of ${target} about the pier?`;
        const [vector] = hashEmbed([question], DIMENSION);
        const t = performance.now();
        await collection.query({
          queryEmbeddings: [vector!],
          nResults: 4,
          include: ['documents', 'metadatas', 'distances'],
        });
        rawMs.push(performance.now() - t);
      }
      retrieval.push({
        chunks,
        ingestChunksPerSecond: Number((step.chunks / step.seconds).toFixed(1)),
        askqRetrievalMs: summarize(askqMs),
        rawQueryMs: summarize(rawMs),
      });
    }

    // The semantic cache, through askq's own module, as its entries grow.
    const prefix = `bench${run}`;
    const cache = createSemanticCache({
      url: services.chromaUrl,
      prefix,
      redis,
      recentKey: (tenant, collection) => createKeys(prefix).semanticRecent(tenant, collection),
      threshold: 0.92,
      ttlSeconds: 86_400,
      timeoutMs: 60_000,
      log: pino({ level: 'silent' }),
    });
    const epoch = { version: 1, generation: 0 };
    const identity = (question: string) => ({
      tenant: 'default',
      collection: 'growth',
      question,
      model: 'fast',
      topK: 4,
    });
    const entry = (i: number): CachedAnswer => ({
      ...epoch,
      storedAt: Date.now(),
      result: { answer: `answer ${i}`, sources: [] } as unknown as QuestionResult,
    });
    const semantic = [];
    let entries = 0;
    for (const target of entrySteps) {
      for (let i = entries; i < target; i += 256) {
        const batch = Array.from({ length: Math.min(256, target - i) }, (_, k) => i + k);
        const vectors = hashEmbed(
          batch.map((n) => `Stored question ${n} of ${run}: which queue holds job ${n * 7}?`),
          DIMENSION,
        );
        await Promise.all(
          batch.map((n, k) =>
            cache.store(identity(`stored ${n} ${run}`), epoch, vectors[k]!, entry(n)),
          ),
        );
        await cache.flush();
      }
      entries = target;
      const lookupMs: number[] = [];
      const storeMs: number[] = [];
      for (let i = 0; i < probes; i++) {
        const question = `New question ${i} of ${run} at ${target}: where do tokens go?`;
        const [vector] = hashEmbed([question], DIMENSION);
        let t = performance.now();
        await cache.lookup(identity(question), epoch, vector!);
        lookupMs.push(performance.now() - t);
        // A store's whole cost: until Chroma has it (the answer waits only for its first part).
        t = performance.now();
        await cache.store(identity(question), epoch, vector!, entry(-i));
        await cache.flush();
        storeMs.push(performance.now() - t);
      }
      entries += probes;
      semantic.push({
        entries: target,
        lookupMs: summarize(lookupMs),
        storeMs: summarize(storeMs),
      });
    }

    // Redis memory one finished question keeps (its record and event log, for RESULT_TTL_SECONDS).
    const memory = async () =>
      Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
    const finished = options.smoke ? 20 : 500;
    const before = await memory();
    for (let i = 0; i < finished; i++) {
      await ask(url, { question: `Memory probe ${i} of ${run}?`, model: 'fast', cache: false });
    }
    const bytesPerQuestion = Math.round(((await memory()) - before) / finished);

    const first = retrieval[0]!;
    const last = retrieval.at(-1)!;
    const firstCache = semantic[0]!;
    const lastCache = semantic.at(-1)!;
    return {
      bench: 'growth',
      note: 'hash embedder (2048 dimensions), one question at a time, cache: false for retrieval; semantic cache through askq’s module in the bench process',
      askq: { retrieval, semantic, redisBytesPerFinishedQuestion: bytesPerQuestion },
      reference: {
        what: 'raw chromadb query (topK 4) of the same collection at each size, same Chroma server',
        rawQueryMs: retrieval.map((r) => ({ chunks: r.chunks, ...r.rawQueryMs })),
      },
      target: { retrievalLargestVsSmallest: 1.5, retrievalVsRaw: 1.2, cacheLargestVsSmallest: 1.5 },
      ratio: {
        retrievalP50LargestVsSmallest: ratio(last.askqRetrievalMs.p50, first.askqRetrievalMs.p50),
        retrievalP99LargestVsSmallest: ratio(last.askqRetrievalMs.p99, first.askqRetrievalMs.p99),
        retrievalP50VsRawAtLargest: ratio(last.askqRetrievalMs.p50, last.rawQueryMs.p50),
        ingestLargestVsSmallestStep: ratio(last.ingestChunksPerSecond, first.ingestChunksPerSecond),
        cacheLookupP50LargestVsSmallest: ratio(lastCache.lookupMs.p50, firstCache.lookupMs.p50),
        cacheStoreP50LargestVsSmallest: ratio(lastCache.storeMs.p50, firstCache.storeMs.p50),
      },
    };
  } finally {
    redis.disconnect();
    await processes.stop().catch(() => undefined);
    await llm.close().catch(() => undefined);
    await services.stop();
  }
}
