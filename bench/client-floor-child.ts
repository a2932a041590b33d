// The raw parts of one question, alone, in a process of their own so that their CPU can be read:
// an `openai` chat stream from the same model server, a `chromadb` query of the same collection,
// and a BullMQ job (add -> processed -> heard complete). Each is run `calls` times with
// `concurrency` in flight; the reply is the CPU milliseconds of this process per call of each.
// An Express JSON endpoint is served too, for the parent to load; asked with a 'cpu' message, this
// process answers with its own CPU milliseconds (microsecond resolution: /proc counts 10 ms ticks,
// too coarse for a smoke run's few calls).
import { ChromaClient } from 'chromadb';
import { Queue, QueueEvents, Worker } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import OpenAI from 'openai';

export interface FloorRequest {
  llmBaseURL: string;
  chromaUrl: string;
  redisUrl: string;
  /** The Chroma collection askq asked, found by this suffix of its name. */
  collectionSuffix: string;
  prompt: Array<{ role: 'system' | 'user'; content: string }>;
  topK: number;
  calls: number;
  concurrency: number;
}

export interface FloorReply {
  /** CPU ms of this process per call. */
  cpuMsPerCall: { openaiStream: number; chromaQuery: number; bullmqJob: number };
  expressUrl: string;
}

const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1_000;
};

async function perCall(calls: number, concurrency: number, call: () => Promise<unknown>) {
  for (let i = 0; i < Math.min(50, calls); i++) await call();
  let next = 0;
  const before = cpu();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < calls) await call();
    }),
  );
  return Number(((cpu() - before) / calls).toFixed(3));
}

async function measure(request: FloorRequest): Promise<FloorReply['cpuMsPerCall']> {
  const { calls, concurrency } = request;

  const openai = new OpenAI({ baseURL: request.llmBaseURL, apiKey: 'bench', maxRetries: 0 });
  const openaiStream = await perCall(calls, concurrency, async () => {
    const stream = await openai.chat.completions.create({
      model: 'bench',
      messages: request.prompt,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) void chunk;
  });

  const url = new URL(request.chromaUrl);
  const chroma = new ChromaClient({ host: url.hostname, port: Number(url.port), ssl: false });
  const names = (await chroma.listCollections()).map((c) => c.name);
  const name = names.find((n) => n.endsWith(request.collectionSuffix));
  if (!name)
    throw new Error(`no collection ending ${request.collectionSuffix} in ${names.join(', ')}`);
  const collection = await chroma.getCollection({ name });
  const stored = await collection.get({ limit: 1, include: ['embeddings'] });
  const vector = stored.embeddings[0];
  if (!vector) throw new Error(`collection ${name} holds no embeddings`);
  const chromaQuery = await perCall(calls, concurrency, () =>
    collection.query({
      queryEmbeddings: [vector],
      nResults: request.topK,
      include: ['documents', 'metadatas', 'distances'],
    }),
  );

  const prefix = `floor-${process.pid}`;
  const connections = [0, 1, 2].map(
    () => new Redis(request.redisUrl, { maxRetriesPerRequest: null }),
  );
  const [producer, consumer, listener] = connections as [Redis, Redis, Redis];
  const queue = new Queue('floor', { connection: producer, prefix });
  const events = new QueueEvents('floor', { connection: listener, prefix });
  const worker = new Worker('floor', () => Promise.resolve(), {
    connection: consumer,
    prefix,
    concurrency,
    removeOnComplete: { count: 1_000 },
  });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
  const bullmqJob = await perCall(calls, concurrency, async () => {
    const job = await queue.add('job', { n: 1 });
    await job.waitUntilFinished(events);
  });
  await Promise.all([worker.close(), events.close(), queue.close()]);
  for (const connection of connections) connection.disconnect();

  return { openaiStream, chromaQuery, bullmqJob };
}

process.on('message', (message: unknown) => {
  if (message === 'cpu') process.send?.({ cpuMs: cpu() });
});

process.once('message', (request: FloorRequest) => {
  const app = express();
  app.use(express.json());
  app.post('/echo', (req, res) => {
    res.status(202).json({ id: 'x', status: 'queued', body: req.body as unknown });
  });
  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    measure(request).then(
      (cpuMsPerCall) =>
        process.send?.({ cpuMsPerCall, expressUrl: `http://127.0.0.1:${port}/echo` }),
      (e: unknown) => {
        console.error(e);
        process.exit(1);
      },
    );
  });
});
