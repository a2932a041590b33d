// ingest: how fast documents go in. askq: documents POSTed to /v1/documents in requests of 100,
// from the first POST to the last ingestion `completed` (chunked, embedded by the built-in hash
// embedder, upserted into Chroma, counted). Beside it, in the same run on the same Chroma: a raw
// `chromadb` upsert of the very same chunks and embeddings in batches of 100, which is what the
// chunks cost Chroma itself. While askq ingests, questions are asked one at a time, so the pickup
// of a question during a large ingestion is set against the pickup when idle.
import { ChromaClient } from 'chromadb';
import { randomUUID } from 'node:crypto';
import { hashEmbed } from '../apps/worker/src/embeddings/hash-embedder.js';
import { createChunker } from '../apps/worker/src/knowledge/chunker.js';
import { send } from './http-client.js';
import { cpuMs, ratio, startBenchProcesses, startServices, summarize } from './lib.js';
import { ask } from './overhead.js';
import type { BenchOptions } from './run.js';

/** The defaults of the worker (CHUNK_SIZE, CHUNK_OVERLAP) and of the hash embedder. */
const CHUNKING = { chunkSize: 800, chunkOverlap: 120 };
const DIMENSION = 2048;
const PER_REQUEST = 100;
const RAW_BATCH = 100;

const WORDS = (
  'queue worker redis stream answer source chunk vector collection tenant cache event retry ' +
  'timeout model prompt token latency replica shard cluster lease quota deadline sweep cancel ' +
  'document title metadata handbook policy contract invoice ferry harbour ticket schedule ' +
  'crossing island pier route weather season winter summer passenger vehicle cyclist timetable'
).split(' ');

/** A document of about three chunks, its words varied so that every vector differs. */
export function benchDocument(i: number, run: string) {
  let seed = i * 2_654_435_761;
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    return seed;
  };
  const sentences: string[] = [];
  let length = 0;
  while (length < 2_100) {
    const n = 8 + (next() % 10);
    const words = Array.from({ length: n }, () => WORDS[next() % WORDS.length]!);
    const sentence = `${words.join(' ')} ${run} number ${i}.`;
    sentences.push(sentence.charAt(0).toUpperCase() + sentence.slice(1));
    length += sentence.length + 1;
  }
  return { id: `doc-${i}`, title: `Document ${i}`, text: sentences.join(' ') };
}

function ingestionIdOf(res: { status: number; text: string }): string {
  if (res.status !== 202) throw new Error(`POST /v1/documents answered ${res.status}: ${res.text}`);
  return (JSON.parse(res.text) as { ingestionId: string }).ingestionId;
}

async function waitForIngestions(url: string, ids: string[]) {
  let chunks = 0;
  for (const id of ids) {
    for (;;) {
      const { text } = await send('GET', `${url}/v1/ingestions/${id}`);
      const view = JSON.parse(text) as {
        status: string;
        chunksTotal: number;
        documents: Array<{ error?: string }>;
      };
      if (view.status === 'failed') throw new Error(`ingestion ${id} failed`);
      if (view.status === 'completed') {
        if (view.documents.some((d) => d.error)) throw new Error(`ingestion ${id} had errors`);
        chunks += view.chunksTotal;
        break;
      }
      // Seldom: every poll is a request the API serves beside the ingestion it measures.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return chunks;
}

export async function ingest(options: BenchOptions) {
  const documentsTotal = options.smoke ? 40 : options.requests;
  const services = await startServices();
  // Enough queued ingestions for one client to send all its requests at once.
  const processes = await startBenchProcesses(services, {
    TENANT_MAX_QUEUED_INGESTIONS: '1000',
    RATE_LIMIT_PER_MINUTE: '100000',
    TENANT_MAX_INFLIGHT: '1000',
  });
  try {
    const { url } = processes;
    const run = randomUUID().slice(0, 8);
    const documents = Array.from({ length: documentsTotal }, (_, i) => benchDocument(i, run));

    // The collection questions are asked of during the ingestion, and the idle pickup.
    const seeded = await send('POST', `${url}/v1/documents`, {
      collection: 'probe',
      documents: documents.slice(0, 5).map((d) => ({ ...d, id: `probe-${d.id}` })),
    });
    await waitForIngestions(url, [ingestionIdOf(seeded)]);
    const probe = async (i: number) => {
      const asked = await ask(url, {
        question: `Probe ${run}-${i}: which worker streams the answer?`,
        collection: 'probe',
        cache: false,
      });
      return asked.active - asked.t0;
    };
    const idle: number[] = [];
    for (let i = 0; i < (options.smoke ? 3 : 30); i++) idle.push(await probe(-1 - i));

    const before = { api: await cpuMs(processes.apiPid), worker: await cpuMs(processes.workerPid) };
    const started = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < documents.length; i += PER_REQUEST) {
      const res = await send('POST', `${url}/v1/documents`, {
        collection: 'ingest',
        documents: documents.slice(i, i + PER_REQUEST),
      });
      ids.push(ingestionIdOf(res));
    }
    let ingesting = true;
    const during: number[] = [];
    const probing = (async () => {
      for (let i = 0; ingesting; i++) {
        during.push(await probe(i));
        // A few questions a second: enough to see the pickup, too few to slow the ingestion.
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const chunks = await waitForIngestions(url, ids);
    const seconds = (performance.now() - started) / 1_000;
    ingesting = false;
    await probing;
    const cpu = {
      api: (await cpuMs(processes.apiPid)) - before.api,
      worker: (await cpuMs(processes.workerPid)) - before.worker,
    };

    // Raw: the same chunks and embeddings, computed beforehand, upserted in batches of 100.
    const chunker = createChunker(CHUNKING);
    const rawChunks = documents.flatMap((d) =>
      chunker(d.id, d.text).map((c) => ({ id: c.id, text: c.text, documentId: d.id })),
    );
    const vectors = hashEmbed(
      rawChunks.map((c) => c.text),
      DIMENSION,
    );
    const { hostname, port } = new URL(services.chromaUrl);
    const client = new ChromaClient({ host: hostname, port: Number(port), ssl: false });
    const collection = await client.createCollection({
      name: `raw-ingest-${run}`,
      embeddingFunction: null,
      configuration: { hnsw: { space: 'cosine' } },
    });
    const rawStarted = performance.now();
    for (let i = 0; i < rawChunks.length; i += RAW_BATCH) {
      const batch = rawChunks.slice(i, i + RAW_BATCH);
      await collection.upsert({
        ids: batch.map((c) => c.id),
        embeddings: vectors.slice(i, i + RAW_BATCH),
        documents: batch.map((c) => c.text),
        metadatas: batch.map((c) => ({ documentId: c.documentId })),
      });
    }
    const rawSeconds = (performance.now() - rawStarted) / 1_000;

    const askqChunksPerSecond = Number((chunks / seconds).toFixed(1));
    const rawChunksPerSecond = Number((rawChunks.length / rawSeconds).toFixed(1));
    return {
      bench: 'ingest',
      documents: documents.length,
      chunks,
      note: `${PER_REQUEST} documents per request, all sent at once; hash embedder (${DIMENSION} dimensions); one worker`,
      askq: {
        seconds: Number(seconds.toFixed(2)),
        documentsPerSecond: Number((documents.length / seconds).toFixed(1)),
        chunksPerSecond: askqChunksPerSecond,
        cpuMsPerChunk: { api: ratio(cpu.api, chunks), worker: ratio(cpu.worker, chunks) },
        pickupIdleMs: summarize(idle),
        pickupDuringIngestMs: summarize(during),
      },
      reference: {
        what: `raw chromadb upsert of the same ${rawChunks.length} chunks and embeddings, batches of ${RAW_BATCH}, same Chroma server`,
        seconds: Number(rawSeconds.toFixed(2)),
        chunksPerSecond: rawChunksPerSecond,
      },
      target: { chunksPerSecondVsRaw: 0.8 },
      ratio: {
        chunksPerSecond: ratio(askqChunksPerSecond, rawChunksPerSecond),
        pickupP50DuringVsIdle: ratio(summarize(during).p50, summarize(idle).p50),
      },
    };
  } finally {
    await processes.stop().catch(() => undefined);
    await services.stop();
  }
}
