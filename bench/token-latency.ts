// token-latency: an LLM chunk written by the model server -> its text in a `token` event at the
// client, per chunk, p50/p99; token batching bounds it by TOKEN_BATCH_MS. A tiny OpenAI-compatible
// streaming server in this process writes one unique word (` w17`) every 10 ms and records when it
// wrote each; the client maps the words of each token event back to their write times. askq runs
// with the default TOKEN_BATCH_MS (50) and with 0 (a flush per chunk); the reference reads the same
// model stream directly, which is the floor: the transport alone.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startBenchProcesses, startServices, summarize, ratio } from './lib.js';
import { ask, benchEnv, questionMaker, seedCollection } from './overhead.js';
import type { BenchOptions } from './run.js';

const CHUNK_EVERY_MS = 10;
const DEFAULT_BATCH_MS = 50;

/** Write times (performance.now()) of the words of the stream being served, by word index. */
interface Streamed {
  emitted: number[];
}

/** An OpenAI-compatible server streaming `chunks` words ` w0 w1 …`, one per chunk, 10 ms apart. */
async function startWordServer(chunks: number) {
  let current: Streamed = { emitted: [] };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = JSON.parse(await readBody(req)) as {
        stream?: boolean;
        stream_options?: { include_usage?: boolean };
      };
      if (req.url !== '/v1/chat/completions' || body.stream !== true) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'only streamed chat completions' } }));
        return;
      }
      const streamed: Streamed = { emitted: [] };
      current = streamed;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      const frame = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        frame({
          id: 'x',
          object: 'chat.completion.chunk',
          created: 0,
          model: 'm',
          choices: [{ index: 0, delta, finish_reason: finish }],
        });
      let gone = false;
      res.on('close', () => (gone = true));
      const start = performance.now();
      for (let i = 0; i < chunks && !gone; i++) {
        // Paced against the start, so a late timer does not push every later chunk back.
        const wait = start + i * CHUNK_EVERY_MS - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const content = i === 0 ? 'w0' : ` w${i}`;
        streamed.emitted[i] = performance.now();
        res.write(chunk(i === 0 ? { role: 'assistant', content } : { content }));
      }
      if (gone) return;
      res.write(chunk({}, 'stop'));
      if (body.stream_options?.include_usage === true) {
        res.write(
          frame({
            id: 'x',
            object: 'chat.completion.chunk',
            created: 0,
            model: 'm',
            choices: [],
            usage: { prompt_tokens: 1, completion_tokens: chunks, total_tokens: chunks + 1 },
          }),
        );
      }
      res.end('data: [DONE]\n\n');
    })().catch(() => res.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    /** The write times of the stream most recently started. */
    latest: () => current,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** Latency of each word: arrival at the client - write time at the model server. */
function wordLatencies(text: string, at: number, emitted: number[], into: number[]) {
  for (const word of text.split(/\s+/)) {
    const match = /^w(\d+)$/.exec(word);
    if (!match) continue;
    const sent = emitted[Number(match[1])];
    if (sent !== undefined) into.push(at - sent);
  }
}

export async function tokenLatency(options: BenchOptions) {
  const chunks = Math.min(200, options.requests);
  const questions = Math.max(1, Math.ceil(options.requests / chunks));
  const services = await startServices();
  const llm = await startWordServer(chunks);
  try {
    // askq, with a given TOKEN_BATCH_MS: `questions` answers of `chunks` words, one at a time.
    const measure = async (batchMs: number) => {
      const processes = await startBenchProcesses(
        services,
        benchEnv(llm.baseURL, { TOKEN_BATCH_MS: String(batchMs) }),
      );
      try {
        await seedCollection(processes.url);
        const next = questionMaker();
        const latencies: number[] = [];
        let tokenEvents = 0;
        let retries = 0;
        for (let q = 0; q < questions; q++) {
          // `smart`: no escalation re-stream when the answer (w0 w1 …) fails grounding.
          const asked = await ask(
            processes.url,
            { question: next(q), model: 'smart' },
            (e, d, at) => {
              if (e !== 'token') return;
              tokenEvents++;
              const { text } = JSON.parse(d) as { text: string };
              wordLatencies(text, at, llm.latest().emitted, latencies);
            },
          );
          retries += asked.retries;
        }
        return {
          tokenBatchMs: batchMs,
          chunkToTokenEventMs: summarize(latencies),
          tokenEvents,
          chunksPerTokenEvent: Number((latencies.length / Math.max(1, tokenEvents)).toFixed(1)),
          retries,
        };
      } finally {
        await processes.stop();
      }
    };
    const batched = await measure(DEFAULT_BATCH_MS);
    const unbatched = await measure(0);

    // Reference: the same stream read directly from the model server.
    const direct: number[] = [];
    const directQuestions = Math.min(questions, 3);
    for (let q = 0; q < directQuestions; q++) {
      const res = await fetch(`${llm.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [] }),
      });
      if (!res.body) throw new Error(`no stream from the word server: ${res.status}`);
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const part of res.body) {
        const at = performance.now();
        buffer += decoder.decode(part as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(6, end);
          buffer = buffer.slice(end + 2);
          if (frame === '[DONE]') continue;
          const content = (JSON.parse(frame) as { choices: { delta: { content?: string } }[] })
            .choices[0]?.delta.content;
          if (content) wordLatencies(content, at, llm.latest().emitted, direct);
        }
      }
    }
    const reference = {
      what: 'the same model stream read directly by this process (transport floor)',
      questions: directQuestions,
      chunkArrivalMs: summarize(direct),
    };
    const bound = DEFAULT_BATCH_MS + 20;
    return {
      bench: 'token-latency',
      questions,
      chunksPerQuestion: chunks,
      chunkEveryMs: CHUNK_EVERY_MS,
      note: 'one question at a time, model smart (no escalation); latency = token event arrival - model server write, same clock',
      askq: { batched, unbatched },
      reference,
      bound: { p99Ms: bound, rule: 'TOKEN_BATCH_MS + 20' },
      ratio: {
        batchedP99VsBound: ratio(batched.chunkToTokenEventMs.p99, bound),
        batchedP50VsUnbatched: ratio(
          batched.chunkToTokenEventMs.p50,
          unbatched.chunkToTokenEventMs.p50,
        ),
        unbatchedP50VsDirect: ratio(
          unbatched.chunkToTokenEventMs.p50,
          reference.chunkArrivalMs.p50,
        ),
        unbatchedP99VsDirect: ratio(
          unbatched.chunkToTokenEventMs.p99,
          reference.chunkArrivalMs.p99,
        ),
      },
      withinBound: batched.chunkToTokenEventMs.p99 <= bound,
    };
  } finally {
    await llm.close();
    await services.stop();
  }
}
