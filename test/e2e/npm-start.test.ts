import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { freePort } from '../../scripts/lib/free-port.js';
import { followEvents } from '../support/sse-client.js';

// `npm start` exactly as a user runs it, on free ports and a fresh data dir so it can run beside
// another copy: managed Redis and Chroma, API and worker processes, the sample corpus loaded.
let child: ChildProcess;
let output = '';
let dataDir: string;
let base: string;
let workerMetrics: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'askq-e2e-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const metricsPort = await freePort();
  workerMetrics = `http://127.0.0.1:${metricsPort}`;
  child = spawn('npm', ['start'], {
    cwd: join(import.meta.dirname, '../..'),
    env: {
      ...process.env,
      PORT: String(port),
      DATA_DIR: dataDir,
      WORKER_METRICS_PORT: String(metricsPort),
      MANAGED_REDIS_PORT: String(await freePort()),
      REDIS_URL: '',
      CHROMA_URL: '',
      LLM_BASE_URL: '',
    },
    // Its own process group, like a terminal's foreground job: Ctrl-C reaches the whole group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('askq is ready')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
  });
  await ready;
}, 180_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null && child.pid) {
    const exited = once(child, 'exit');
    process.kill(-child.pid, 'SIGINT');
    await exited;
  }
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

it('prints its URLs and answers a question about the sample corpus over SSE', async () => {
  expect(output).toContain(`/v1/questions`);
  expect(output).toMatch(/metrics/);
  expect(output).toContain(`${base.replace('127.0.0.1', 'localhost')}/admin/queues`);
  expect((await fetch(`${base}/admin/queues`)).status).toBe(200);
  const res = await fetch(`${base}/v1/questions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      question: 'How does a client resume the event stream after a disconnect?',
    }),
  });
  expect(res.status).toBe(202);
  const { id, links } = (await res.json()) as { id: string; links: { events: string } };
  const events = await followEvents(base + links.events);
  expect(events.map((e) => e.event).at(-1)).toBe('completed');
  const result = (events.at(-1)!.data as { result: QuestionView['result'] }).result!;
  expect(result.model).toBe('extractive');
  expect(result.sources.length).toBeGreaterThan(0);
  // Retrieval found the document about the event stream, and the answer cites and is grounded.
  expect(result.sources.map((s) => s.documentId)).toContain('event-stream');
  expect(result.answer).toMatch(/\[\d\]/);
  expect(result.validation.passed).toBe(true);
  const tokens = events
    .filter((e) => e.event === 'token')
    .map((e) => (e.data as { text: string }).text);
  expect(tokens.join('')).toBe(result.answer);
  const view = (await (await fetch(`${base}/v1/questions/${id}`)).json()) as QuestionView;
  expect(view.status).toBe('completed');
});

it('replaces a worker that dies (killed, or ended by its watchdog) and goes on answering', async () => {
  const workerPid = async () => {
    for (const pid of await childPids(child.pid!)) {
      if ((await cmdline(pid)).includes('apps/worker/src/main.ts')) return pid;
    }
    return undefined;
  };
  const before = await workerPid();
  expect(before).toBeDefined();
  process.kill(before!, 'SIGKILL');
  await vi.waitFor(() => expect(output).toMatch(/worker was killed; starting it again/), {
    timeout: 10_000,
  });
  const after = await vi.waitFor(
    async () => {
      const pid = await workerPid();
      expect(pid).toBeDefined();
      expect(pid).not.toBe(before);
      expect((await fetch(`${workerMetrics}/healthz`)).status).toBe(200);
      return pid;
    },
    { timeout: 60_000, interval: 200 },
  );
  expect(after).not.toBe(before);
  const res = await fetch(`${base}/v1/questions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ question: 'What does askq keep in Redis?', cache: false }),
  });
  expect(res.status).toBe(202);
  const { links } = (await res.json()) as { links: { events: string } };
  expect((await followEvents(base + links.events)).at(-1)!.event).toBe('completed');
}, 90_000);

it('stops every child on Ctrl-C', async () => {
  const pids = await childPids(child.pid!);
  expect(pids.length, JSON.stringify(pids)).toBeGreaterThanOrEqual(4); // redis, chroma, api, worker
  const exited = once(child, 'exit');
  process.kill(-child.pid!, 'SIGINT');
  const [code, signal] = (await exited) as [number | null, string | null];
  expect({ code, signal }, output).toEqual({ code: 0, signal: null });
  for (const pid of pids) expect(await alive(pid), `pid ${pid} still alive\n${output}`).toBe(false);
}, 60_000);

it('leaves no process behind when the launcher itself is killed outright (SIGKILL)', async () => {
  const run = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: join(import.meta.dirname, '../..'),
    env: {
      ...process.env,
      PORT: String(await freePort()),
      DATA_DIR: join(dataDir, 'killed'),
      WORKER_METRICS_PORT: String(await freePort()),
      MANAGED_REDIS_PORT: String(await freePort()),
      REDIS_URL: '',
      CHROMA_URL: '',
      LLM_BASE_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('askq is ready')) resolve();
    };
    run.stdout.on('data', onData);
    run.stderr.on('data', onData);
    run.once('exit', (code) => reject(new Error(`start exited with ${code}:\n${text}`)));
  });
  const pids = await childPids(run.pid!);
  expect(pids.length, JSON.stringify(pids)).toBeGreaterThanOrEqual(4); // redis, chroma, api, worker
  const exited = once(run, 'exit');
  run.kill('SIGKILL'); // no handler runs: the children must notice on their own
  await exited;
  // API and worker see their IPC channel close; Redis and Chroma get SIGTERM from the kernel.
  await vi.waitFor(
    async () => {
      const left = [];
      for (const pid of pids) if (await alive(pid)) left.push(pid);
      expect(left).toEqual([]);
    },
    { timeout: 30_000, interval: 100 },
  );
}, 180_000);

it('exits 1 naming the fixes when redis-server is missing and REDIS_URL is unset', async () => {
  const { mkdir, symlink } = await import('node:fs/promises');
  // A PATH holding only node: no redis-server to find.
  const bin = join(dataDir, 'bin-without-redis');
  await mkdir(bin, { recursive: true });
  await symlink(process.execPath, join(bin, 'node'));
  const run = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: join(import.meta.dirname, '../..'),
    env: {
      ...process.env,
      PATH: bin,
      REDIS_URL: '',
      DATA_DIR: join(dataDir, 'no-redis'),
      PORT: String(await freePort()),
      WORKER_METRICS_PORT: String(await freePort()),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  run.stdout.on('data', (c: Buffer) => (text += c.toString()));
  run.stderr.on('data', (c: Buffer) => (text += c.toString()));
  const [code] = (await once(run, 'exit')) as [number | null];
  expect(code).toBe(1);
  expect(text).toMatch(/redis-server/);
  expect(text).toMatch(/apt-get install redis-server/);
  expect(text).toMatch(/REDIS_URL/);
  expect(text).toMatch(/docker compose up -d redis/);
}, 60_000);

it('exits 1 at once when its API port is taken, instead of reporting another server as ready', async () => {
  const { createServer } = await import('node:net');
  const blocker = createServer().listen(0, '0.0.0.0');
  await once(blocker, 'listening');
  const port = (blocker.address() as { port: number }).port;
  try {
    const run = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      cwd: join(import.meta.dirname, '../..'),
      env: { ...process.env, PORT: String(port), DATA_DIR: join(dataDir, 'busy') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    run.stderr.on('data', (c: Buffer) => (text += c.toString()));
    const [code] = (await once(run, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(text).toContain(`port ${port}`);
    expect(text).toMatch(/PORT/);
  } finally {
    blocker.close();
  }
}, 60_000);

it('refuses bad configuration before connecting anywhere, listing every bad variable', async () => {
  for (const entry of ['apps/api/src/main.ts', 'apps/worker/src/main.ts']) {
    const run = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: join(import.meta.dirname, '../..'),
      env: { ...process.env, REDIS_URL: 'http://not-redis', SHUTDOWN_TIMEOUT_MS: 'soon' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    run.stderr.on('data', (c: Buffer) => (text += c.toString()));
    const [code] = (await once(run, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(text).toContain('REDIS_URL');
    expect(text).toContain('SHUTDOWN_TIMEOUT_MS');
  }
}, 60_000);

/** Whether a process still runs; an exited one that nobody reaped yet (a zombie) does not. */
async function alive(pid: number): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return stat !== '' && state !== 'Z' && state !== 'X';
}

/** A process's command line, from /proc. */
async function cmdline(pid: number): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
}

/** Every descendant of a process, from /proc. */
async function childPids(root: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(Number(entry), ppid);
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent !== pid) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
}
