// `npm run chaos -- [--seconds 60] [--clients 4]`: two API processes and two workers against one
// Redis that fsyncs every write, questions asked without pause, and every few seconds one of the
// four SIGKILLed at random and started again. At the end every accepted question must be
// terminal: the JSON summary counts them by outcome, and `open` must be 0. Each one's event log
// must hold exactly one terminal event, as its last (`badLogs` must be 0). Exit 1 otherwise.
// Not part of `npm test`: it runs for minutes and proves a property of the whole, not a case.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createKeys } from '@askq/shared';
import { startChromaServer } from '../../scripts/lib/chroma-server.js';
import { freePort } from '../../scripts/lib/free-port.js';
import { startRedisServer } from '../../scripts/lib/redis-server.js';
import { createFakeLlm } from '../support/fake-llm.js';
import { spawnApi, spawnWorker, type AppProcess } from '../support/processes.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    clients: { type: 'string', default: '4' },
  },
});
const seconds = Number(values.seconds);
const clients = Number(values.clients);

const dir = await mkdtemp(join(tmpdir(), 'askq-chaos-'));
const redis = await startRedisServer({
  port: await freePort(),
  dataDir: join(dir, 'redis'),
  logFile: join(dir, 'redis.log'),
  appendfsync: 'always',
});
const chroma = await startChromaServer({
  port: await freePort(),
  dataDir: join(dir, 'chroma'),
  logFile: join(dir, 'chroma.log'),
});
const llm = await createFakeLlm();
llm.reply(() => ({
  text: `${'The Moon pulls the oceans. '.repeat(8).trim()} [1]`,
  chunkDelayMs: 20,
}));
const env = {
  REDIS_URL: redis.url,
  CHROMA_URL: chroma.url,
  LLM_BASE_URL: llm.baseURL,
  REDIS_PREFIX: 'chaos',
  LOG_LEVEL: 'warn',
  WORKER_LOCK_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  ORPHAN_SWEEP_INTERVAL_MS: '1000',
  // An API killed between a record and its job: the sweep takes the job for lost after this.
  LOST_JOB_GRACE_MS: '5000',
  JOB_TIMEOUT_MS: '30000',
  RATE_LIMIT_PER_MINUTE: '1000000',
  READ_RATE_LIMIT_PER_MINUTE: '1000000',
  TENANT_MAX_INFLIGHT: '100000',
};

type Slot = { kind: 'api' | 'worker'; process: AppProcess };
const start = async (kind: Slot['kind']): Promise<Slot> => ({
  kind,
  process: await (kind === 'api' ? spawnApi(env) : spawnWorker(env)),
});
const slots: Slot[] = await Promise.all([
  start('api'),
  start('api'),
  start('worker'),
  start('worker'),
]);
const apiUrls = () => slots.filter((s) => s.kind === 'api').map((s) => s.process.url);

const first = apiUrls()[0]!;
const seeded = await fetch(`${first}/v1/documents`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    documents: [{ id: 'tides', text: 'Tides are caused by the pull of the Moon on the oceans.' }],
  }),
});
if (seeded.status !== 202) throw new Error(`seeding answered ${seeded.status}`);
await sleep(2_000);

const accepted = new Set<string>();
const refused = new Map<number, number>();
let stop = false;
let n = 0;
const client = async () => {
  while (!stop) {
    const urls = apiUrls();
    const url = urls[n % urls.length]!;
    n++;
    try {
      const res = await fetch(`${url}/v1/questions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ question: `What causes tides? (${n})`, cache: false }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status === 202) accepted.add(((await res.json()) as { id: string }).id);
      else refused.set(res.status, (refused.get(res.status) ?? 0) + 1);
    } catch {
      // The API it asked was just killed: not accepted, asked again.
      await sleep(50);
    }
  }
};
const kills: string[] = [];
const chaos = async () => {
  while (!stop) {
    await sleep(2_000 + Math.random() * 3_000);
    if (stop) break;
    const i = Math.floor(Math.random() * slots.length);
    const victim = slots[i]!;
    kills.push(victim.kind);
    process.kill(victim.process.process.pid, 'SIGKILL');
    await victim.process.process.exited;
    slots[i] = await start(victim.kind);
  }
};

const load = Promise.all([...Array.from({ length: clients }, client), chaos()]);
await sleep(seconds * 1_000);
stop = true;
await load;

// Every accepted question must end: within its deadline and a sweep at the latest.
const deadline = Date.now() + 30_000 + 7_500 + 15_000;
const outcomes = new Map<string, number>();
let open = [...accepted];
while (open.length > 0 && Date.now() < deadline) {
  const still: string[] = [];
  for (const id of open) {
    const res = await fetch(`${apiUrls()[0]!}/v1/questions/${id}`).catch(() => undefined);
    const view = res?.ok
      ? ((await res.json()) as { status: string; error?: { code: string } })
      : undefined;
    if (view && ['completed', 'failed', 'cancelled'].includes(view.status)) {
      const key = view.status === 'failed' ? `failed:${view.error?.code}` : view.status;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    } else {
      still.push(id);
    }
  }
  open = still;
  if (open.length > 0) await sleep(1_000);
}

// One end per question, and nothing after it: a second finisher's append must have been refused.
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const reader = new Redis(redis.url);
const keys = createKeys(env.REDIS_PREFIX);
let badLogs = 0;
for (const id of accepted) {
  const names = (await reader.xrange(keys.events(id), '-', '+')).map(([, f]) => f[1]!);
  const ends = names.filter((name) => TERMINAL.has(name)).length;
  if (ends !== 1 || !TERMINAL.has(names.at(-1)!)) badLogs++;
}
reader.disconnect();

console.log(
  JSON.stringify(
    {
      seconds,
      clients,
      kills: {
        api: kills.filter((k) => k === 'api').length,
        worker: kills.filter((k) => k === 'worker').length,
      },
      accepted: accepted.size,
      refused: Object.fromEntries(refused),
      outcomes: Object.fromEntries(outcomes),
      open: open.length,
      badLogs,
    },
    null,
    2,
  ),
);
await Promise.allSettled(slots.map((s) => s.process.process.stop()));
await llm.close();
await Promise.allSettled([redis.stop(), chroma.stop()]);
process.exit(open.length === 0 && badLogs === 0 ? 0 : 1);
