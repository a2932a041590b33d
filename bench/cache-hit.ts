// cache-hit: latency and rate of an exact cache hit through HTTP (POST /v1/questions answered
// 200 from Redis), beside a bare Express JSON endpoint on the same machine in the same run. Both
// servers run in processes of their own, as deployed, so the load generator's pauses (GC) are not
// charged to them.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { send } from './http-client.js';
import { followUntilDone, load, startBenchProcesses, startServices, summarize } from './lib.js';
import type { BenchOptions } from './run.js';

/** The reference: Express with its JSON body parser, answering a small JSON body. */
const BARE_EXPRESS = `
import express from 'express';
const app = express();
app.use(express.json());
app.post('/echo', (req, res) => res.json({ id: 'x', status: 'completed', body: req.body }));
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

async function startBareExpress() {
  // Run from the repository so `express` resolves from its node_modules.
  const child = spawn(process.execPath, ['--input-type=module', '-e', BARE_EXPRESS], {
    cwd: import.meta.dirname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Its port, or its exit if it dies first (a line that never comes would hang the bench).
  const exited = once(child, 'exit');
  const line = await Promise.race([
    once(createInterface({ input: child.stdout }), 'line').then(([l]) => String(l)),
    exited.then(([code]) => {
      throw new Error(`bare Express exited (${String(code)}) before it listened`);
    }),
  ]);
  return {
    url: `http://127.0.0.1:${Number(line)}/echo`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}

export async function cacheHit(options: BenchOptions) {
  const services = await startServices();
  // Limits out of the way: this measures the hit path, not the rate limiter's refusals.
  const askq = await startBenchProcesses(services, {
    RATE_LIMIT_PER_MINUTE: '100000000',
    READ_RATE_LIMIT_PER_MINUTE: '100000000',
    TENANT_MAX_INFLIGHT: '100000',
  });
  const bare = await startBareExpress();
  try {
    const question = { question: 'How does a client resume the event stream?' };
    const post = (url: string, expected: number) => () =>
      send('POST', url, question).then((res) => {
        if (res.status !== expected)
          throw new Error(`${url}: expected ${expected}, got ${res.status}`);
      });
    const askqUrl = `${askq.url}/v1/questions`;
    // Fill the cache: the first ask runs the pipeline (empty collection: the no-sources answer).
    const first = await send('POST', askqUrl, question);
    const { links } = JSON.parse(first.text) as { links: { events: string } };
    await followUntilDone(askq.url + links.events);

    // Warm both, then measure one at a time (latency) and with concurrency (rate).
    const warm = options.smoke ? 10 : 200;
    await load(warm, 1, post(askqUrl, 200));
    await load(warm, 1, post(bare.url, 200));
    const askqSerial = await load(options.requests, 1, post(askqUrl, 200));
    const bareSerial = await load(options.requests, 1, post(bare.url, 200));
    const askqLoad = await load(options.requests, options.concurrency, post(askqUrl, 200));
    const bareLoad = await load(options.requests, options.concurrency, post(bare.url, 200));
    const a = summarize(askqSerial.latencies);
    const b = summarize(bareSerial.latencies);
    return {
      bench: 'cache-hit',
      requests: options.requests,
      concurrency: options.concurrency,
      note: 'askq API and worker, and the bare Express server, each in a process of its own; latency one request at a time, rate at `concurrency` in flight',
      askq: {
        latencyMs: a,
        perSecond: askqLoad.perSecond,
        loadedLatencyMs: summarize(askqLoad.latencies),
      },
      bareExpress: {
        latencyMs: b,
        perSecond: bareLoad.perSecond,
        loadedLatencyMs: summarize(bareLoad.latencies),
      },
      target: { p99Ms: 5 },
      ratio: {
        p50: Number((a.p50 / b.p50).toFixed(2)),
        p99: Number((a.p99 / b.p99).toFixed(2)),
        perSecond: Number((askqLoad.perSecond / bareLoad.perSecond).toFixed(2)),
      },
    };
  } finally {
    await bare.stop();
    await askq.stop();
    await services.stop();
  }
}
