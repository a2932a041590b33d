// `npm run bench -- <name> [--requests N] [--concurrency N] [--smoke] [--cache]`: one benchmark,
// a JSON summary on stdout. `--smoke` runs a tiny version to prove the bench works (CI), with no
// claims.
import { parseArgs } from 'node:util';

/** Options every bench receives. */
export interface BenchOptions {
  requests: number;
  concurrency: number;
  smoke: boolean;
  /** Ask with the answer cache on (`--cache`, overhead only): every question new, so a miss. */
  cache: boolean;
}

type Bench = (options: BenchOptions) => Promise<Record<string, unknown>>;

const BENCHES: Record<string, () => Promise<Bench>> = {
  pickup: async () => (await import('./pickup.js')).pickup,
  overhead: async () => (await import('./overhead.js')).overhead,
  throughput: async () => (await import('./throughput.js')).throughput,
  'sse-fanout': async () => (await import('./sse-fanout.js')).sseFanout,
  'cache-hit': async () => (await import('./cache-hit.js')).cacheHit,
  'token-latency': async () => (await import('./token-latency.js')).tokenLatency,
  ingest: async () => (await import('./ingest.js')).ingest,
  'default-path': async () => (await import('./default-path.js')).defaultPath,
  growth: async () => (await import('./growth.js')).growth,
};

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string' },
    concurrency: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    cache: { type: 'boolean', default: false },
  },
});
const name = positionals[0];
const load = name ? BENCHES[name] : undefined;
if (!load) {
  console.error(
    `usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [--requests N] [--concurrency N] [--smoke] [--cache]`,
  );
  process.exit(2);
}
const smoke = values.smoke === true;
const bench = await load();
const result = await bench({
  requests: Number(values.requests ?? (smoke ? 20 : 2000)),
  concurrency: Number(values.concurrency ?? (smoke ? 2 : 16)),
  smoke,
  cache: values.cache === true,
});
console.log(
  JSON.stringify(
    { ...result, smoke, node: process.version, date: new Date().toISOString() },
    null,
    2,
  ),
);
