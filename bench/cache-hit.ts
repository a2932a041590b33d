// cache-hit: latency and rate of an exact cache hit through HTTP (POST /v1/questions answered
// 200 from Redis), beside a bare Express JSON endpoint on the same machine in the same run.
import { once } from 'node:events';
import express from 'express';
import { send } from './http-client.js';
import { followUntilDone, load, startBenchAskq, summarize } from './lib.js';
import type { BenchOptions } from './run.js';

export async function cacheHit(options: BenchOptions) {
  // Limits out of the way: this measures the hit path, not the rate limiter's refusals.
  const askq = await startBenchAskq({
    RATE_LIMIT_PER_MINUTE: '100000000',
    TENANT_MAX_INFLIGHT: '100000',
  });
  const bare = express();
  bare.use(express.json());
  bare.post('/echo', (req, res) => {
    res.json({ id: 'x', status: 'completed', body: req.body as unknown });
  });
  const server = bare.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const bareUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/echo`;
  try {
    const question = { question: 'How does a client resume the event stream?' };
    const post = (url: string) => () =>
      send('POST', url, question).then((res) => {
        if (url !== bareUrl && res.status !== 200)
          throw new Error(`expected a cache hit, got ${res.status}`);
      });
    const askqUrl = `${askq.url}/v1/questions`;
    // Fill the cache: the first ask runs the pipeline (empty collection: the no-sources answer).
    const first = await send('POST', askqUrl, question);
    const { links } = JSON.parse(first.text) as { links: { events: string } };
    await followUntilDone(askq.url + links.events);

    // Warm both, then measure one at a time (latency) and with concurrency (rate).
    const warm = options.smoke ? 10 : 200;
    await load(warm, 1, post(askqUrl));
    await load(warm, 1, post(bareUrl));
    const askqSerial = await load(options.requests, 1, post(askqUrl));
    const bareSerial = await load(options.requests, 1, post(bareUrl));
    const askqLoad = await load(options.requests, options.concurrency, post(askqUrl));
    const bareLoad = await load(options.requests, options.concurrency, post(bareUrl));
    const a = summarize(askqSerial.latencies);
    const b = summarize(bareSerial.latencies);
    return {
      bench: 'cache-hit',
      requests: options.requests,
      concurrency: options.concurrency,
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
      ratio: {
        p50: Number((a.p50 / b.p50).toFixed(2)),
        p99: Number((a.p99 / b.p99).toFixed(2)),
        perSecond: Number((askqLoad.perSecond / bareLoad.perSecond).toFixed(2)),
      },
    };
  } finally {
    server.close();
    await askq.stop();
  }
}
