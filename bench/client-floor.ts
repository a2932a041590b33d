// The floor under askq's CPU per question: what the libraries the stack is built on spend on the
// same work with no askq code around them, measured in the same run against the same servers.
// A question costs one Express JSON POST, one BullMQ job (added, processed, heard complete) and one
// `openai` chat stream; askq's CPU per question is set against their sum.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { send } from './http-client.js';
import { load } from './lib.js';
import type { FloorReply, FloorRequest } from './client-floor-child.js';

/** Sources the size of the bench corpus's chunks, so the prompt has askq's size. */
const SOURCE = 'In askq, workers stream answers to clients as they are generated. '.repeat(2);

/** The floor against the servers of a bench stack, `calls` at `concurrency`. */
export function floorOfStack(
  stack: {
    llm: { baseURL: string };
    services: { chromaUrl: string; redisUrl: string };
  },
  collection: string,
  calls: number,
  concurrency: number,
) {
  return measureClientFloor({
    llmBaseURL: stack.llm.baseURL,
    chromaUrl: stack.services.chromaUrl,
    redisUrl: stack.services.redisUrl,
    collectionSuffix: `.${collection}`,
    calls,
    concurrency,
  });
}

export async function measureClientFloor(options: {
  llmBaseURL: string;
  chromaUrl: string;
  redisUrl: string;
  collectionSuffix: string;
  calls: number;
  concurrency: number;
}) {
  const child = fork(new URL('./client-floor-child.ts', import.meta.url), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    const topK = 4;
    const request: FloorRequest = {
      ...options,
      topK,
      prompt: [
        { role: 'system', content: 'Answer only from the numbered sources and cite them.' },
        {
          role: 'user',
          content: `Sources:\n\n${Array.from({ length: topK }, (_, i) => `[${i + 1}] ${SOURCE}`).join('\n\n')}\n\nQuestion: how do workers stream answers?`,
        },
      ],
    };
    child.send(request);
    const [reply] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`client floor process exited ${String(code)}`);
      }),
    ])) as [FloorReply];
    const { openaiStream, chromaQuery, bullmqJob } = reply.cpuMsPerCall;

    // Express's share: the child serves, this process loads it; the child's CPU is read from /proc.
    const body = { question: 'how do workers stream answers?', collection: 'bench' };
    const post = async () => {
      const res = await send('POST', reply.expressUrl, body);
      if (res.status !== 202) throw new Error(`bare Express answered ${res.status}`);
    };
    await load(Math.min(200, options.calls), options.concurrency, post);
    const childCpu = async () => {
      child.send('cpu');
      const [reply] = (await once(child, 'message')) as [{ cpuMs: number }];
      return reply.cpuMs;
    };
    const before = await childCpu();
    await load(options.calls, options.concurrency, post);
    const expressPost = Number((((await childCpu()) - before) / options.calls).toFixed(3));

    return {
      what: 'the same work done by the raw libraries alone, same servers, same run',
      concurrency: options.concurrency,
      cpuMsPerCall: { expressPost, bullmqJob, openaiStream, chromaQuery },
      // A lower bound for askq's API + worker CPU per question. Chroma is left out: askq batches
      // concurrent queries, so its client's share per question falls with load.
      cpuMsPerQuestion: Number((expressPost + bullmqJob + openaiStream).toFixed(3)),
    };
  } finally {
    child.kill();
  }
}
