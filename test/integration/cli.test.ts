import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuestionView } from '@askq/shared';
import { freePort } from '../../scripts/lib/free-port.js';
import { startAskq, type TestAskq } from '../support/askq.js';
import { createFakeLlm, type FakeLlm } from '../support/fake-llm.js';
import { followEvents } from '../support/sse-client.js';

// `npm run askq` as a user runs it, as a child process against a real askq and a fake LLM.
const root = join(import.meta.dirname, '../..');
const DOC = {
  id: 'resuming',
  title: 'Resuming streams',
  text: 'A client resumes the event stream by sending the last event id it saw as the Last-Event-ID header. The server then replays every event after that id, so nothing is lost or repeated.',
};
const ANSWER =
  'A client resumes the event stream by sending the last event id as the Last-Event-ID header [1].';
const SOURCE_LINE = /\[1\] Resuming streams \(resuming\) score \d\.\d\d/;

let llm: FakeLlm;
let askq: TestAskq;

beforeAll(async () => {
  llm = await createFakeLlm();
  askq = await startAskq({ env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '5' } });
  await askq.seed([DOC]);
});
afterAll(async () => {
  await askq?.stop();
  await llm?.close();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onStderr` sees stderr as it grows, e.g. to interrupt the run. */
function run(
  args: string[],
  options: { env?: Record<string, string>; npm?: boolean; onStderr?: (text: string) => void } = {},
): Promise<Run> & { pid: number | undefined; kill: (signal: NodeJS.Signals) => boolean } {
  const env: Record<string, string | undefined> = {
    ...process.env,
    ASKQ_URL: askq.url,
    ASKQ_API_KEY: undefined,
    ...options.env,
  };
  // Through npm once, as the README says; directly otherwise so signals reach the CLI itself.
  const child = options.npm
    ? spawn('npm', ['run', '--silent', 'askq', '--', ...args], { cwd: root, env })
    : spawn(process.execPath, ['--import', 'tsx', 'scripts/askq/main.ts', ...args], {
        cwd: root,
        env,
      });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    options.onStderr?.(stderr);
  });
  const done = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }));
  return Object.assign(done, { pid: child.pid, kill: (s: NodeJS.Signals) => child.kill(s) });
}

const idOf = (stderr: string) => /question ([0-9a-f-]{36})/.exec(stderr)?.[1];

/**
 * A question answered through the API, not the CLI, in a collection of its own holding DOC: a
 * test that needs an answered question makes its own, and no cache carries over between tests.
 */
async function answered(question: string, collection: string): Promise<string> {
  await askq.seed([DOC], collection);
  llm.reply(() => ({ text: ANSWER }));
  const { id, events } = await askq.ask(question, { collection });
  expect((await followEvents(events)).at(-1)?.event).toBe('completed');
  return id;
}

describe('askq ask', () => {
  it('shows the stages, streams the answer, lists the source and exits 0', async () => {
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
    const { code, stdout, stderr } = await run(['ask', 'How does a client resume the stream?'], {
      npm: true,
    });
    expect(code, stderr).toBe(0);
    expect(stdout.startsWith(`${ANSWER}\n`)).toBe(true);
    expect(stdout).toMatch(SOURCE_LINE);
    // Not a terminal: one plain line per finished stage, then the summary.
    expect(stderr).toMatch(/^retrieval \d+ ms$/m);
    expect(stderr).toMatch(/^generation \d+ ms$/m);
    expect(stderr).toMatch(/^validation \d+ ms$/m);
    expect(stderr).toMatch(/model gpt-4o-mini · route \w+ · cached no/);
    expect(stderr).toMatch(/total \d+ ms/);
    expect(idOf(stderr)).toBeDefined();
  });

  it('answers a repeated question from the cache at once', async () => {
    await answered('How does a client resume the stream?', 'cli-cache');
    const { code, stdout, stderr } = await run([
      'ask',
      'How does a client resume the stream?',
      '-c',
      'cli-cache',
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/answered from the cache/);
    expect(stdout.startsWith(`${ANSWER}\n`)).toBe(true);
    expect(stderr).toMatch(/cached yes/);
  });

  it('prints the result as JSON with --json', async () => {
    llm.reply(() => ({ text: ANSWER, chunkDelayMs: 5 }));
    const { code, stdout, stderr } = await run([
      'ask',
      'What does a client send to resume?',
      '--json',
      '--top-k',
      '2',
      '--model',
      'fast',
    ]);
    expect(code, stderr).toBe(0);
    const printed = JSON.parse(stdout) as {
      id: string;
      status: string;
      result: QuestionView['result'];
    };
    expect(printed).toMatchObject({
      status: 'completed',
      result: { answer: ANSWER, route: 'fast', cached: false },
    });
    expect(printed.result?.sources[0]?.documentId).toBe('resuming');
  });

  it('exits 1 with the error code when the question fails', async () => {
    llm.reply(() => ({ status: 400, error: 'nope' }));
    const { code, stdout, stderr } = await run(['ask', 'Will this one fail?']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/failed: LLM_REJECTED: /);
    expect(stdout).toBe('');
  });

  it('exits 2 with the API error and its field paths on a 400', async () => {
    const { code, stderr } = await run(['ask', '  ']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/INVALID_REQUEST/);
    expect(stderr).toMatch(/question: must not be empty/);
  });

  it('exits 2 on bad usage', async () => {
    const { code, stderr } = await run(['ask', '--top-k', 'many', 'why?']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--top-k/);
    expect(stderr).toMatch(/Usage: npm run askq -- ask/);
  });

  it('exits 2 naming ASKQ_URL when askq cannot be reached', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const { code, stderr } = await run(['ask', 'anyone there?'], { env: { ASKQ_URL: closed } });
    expect(code).toBe(2);
    expect(stderr).toMatch(/ECONNREFUSED/);
    expect(stderr).toMatch(/ASKQ_URL/);
  });

  it('resumes after the connection drops mid-answer, with Last-Event-ID', async () => {
    const text = `${ANSWER} The server then replays every event after that id, so nothing is lost [1].`;
    llm.reply(() => ({ text, chunkDelayMs: 20 }));
    const proxy = await startCuttingProxy(new URL(askq.url).port);
    try {
      const { code, stdout, stderr } = await run(['ask', 'How is a dropped stream resumed?'], {
        env: { ASKQ_URL: proxy.url },
      });
      expect(code, stderr).toBe(0);
      expect(proxy.cut).toBe(true);
      expect(stderr).toMatch(/connection lost .*; resuming/);
      // Tokens before the cut plus tokens after it: the answer once, nothing repeated.
      expect(stdout.startsWith(`${text}\n`)).toBe(true);
      const resumed = proxy.heads.filter((head) => /^GET \S+\/events /.test(head));
      expect(resumed).toHaveLength(2);
      expect(resumed[0]).not.toMatch(/last-event-id/i);
      expect(resumed[1]).toMatch(/^last-event-id: \d+-\d+\r$/im);
    } finally {
      await proxy.close();
    }
  });

  it('leaves the question running on Ctrl-C, or cancels it with --cancel-on-exit', async () => {
    const slow = Array.from({ length: 200 }, () => 'resumes').join(' ');
    llm.reply(() => ({ text: slow, chunkDelayMs: 50 }));
    const interrupt = (args: string[]) => {
      let sent = false;
      const child = run(args, {
        onStderr: (text) => {
          // Interrupted once generation has begun, i.e. mid-answer.
          if (!sent && /retrieval \d+ ms/.test(text)) sent = child.kill('SIGINT');
        },
      });
      return child;
    };
    const kept = await interrupt(['ask', 'Keep going after Ctrl-C?', '--no-cache']);
    expect(kept.code, kept.stderr).toBe(130);
    expect(kept.stderr).toMatch(/goes on; see it with: npm run askq -- status/);
    const keptId = idOf(kept.stderr)!;
    expect(['queued', 'active', 'completed']).toContain((await view(keptId)).status);
    // Seen running on; cancelled now, so that it does not run into the tests after this one.
    await fetch(`${askq.url}/v1/questions/${keptId}`, { method: 'DELETE' });
    await expect
      .poll(async () => (await view(keptId)).status, { timeout: 10_000, interval: 50 })
      .toMatch(/^(cancelled|completed)$/);

    const cancelled = await interrupt(['ask', 'Stop on Ctrl-C?', '--no-cache', '--cancel-on-exit']);
    expect(cancelled.code, cancelled.stderr).toBe(130);
    expect(cancelled.stderr).toMatch(/cancelled question/);
    const id = idOf(cancelled.stderr)!;
    await expect
      .poll(async () => (await view(id)).status, { timeout: 10_000, interval: 50 })
      .toBe('cancelled');
  });

  it('shows a question with status, and exits 2 for an unknown one', async () => {
    const askedId = await answered('How does a client resume the stream?', 'cli-status');
    const found = await run(['status', askedId]);
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toMatch(/^status {5}completed$/m);
    expect(found.stdout).toContain(ANSWER);
    expect(found.stdout).toMatch(SOURCE_LINE);
    const json = await run(['status', askedId, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: askedId, status: 'completed' });
    const missing = await run(['status', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no question/);
  });
});

describe('askq ingest', () => {
  it('ingests a folder like npm run ingest, and ask finds it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'askq-cli-'));
    try {
      await writeFile(
        join(dir, 'ferries.md'),
        '# Ferries\n\nThe ferry to the island leaves at noon.',
      );
      const ingested = await run(['ingest', '--collection', 'clidocs', dir]);
      expect(ingested.code, ingested.stdout + ingested.stderr).toBe(0);
      expect(ingested.stdout).toMatch(/1 file ingested \(1 chunk\) into collection "clidocs"/);
      llm.reply(() => ({ text: 'The ferry to the island leaves at noon [1].' }));
      const asked = await run(['ask', 'When does the ferry leave?', '-c', 'clidocs']);
      expect(asked.code, asked.stderr).toBe(0);
      expect(asked.stdout).toMatch(/\[1\] Ferries \(ferries\) score/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('with API keys', () => {
  const KEY = 'cli-test-key-0123456789';
  let secured: TestAskq;
  beforeAll(async () => {
    secured = await startAskq({
      env: { LLM_BASE_URL: llm.baseURL, TOKEN_BATCH_MS: '5', API_KEYS: `cli:${KEY}` },
    });
  });
  afterAll(async () => secured?.stop());

  it('sends ASKQ_API_KEY, and explains a missing key', async () => {
    // The tenant has no documents: askq answers that without the model, through the same stream.
    const ok = await run(['ask', 'Is anything here?'], {
      env: { ASKQ_URL: secured.url, ASKQ_API_KEY: KEY },
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/No sources/);
    const refused = await run(['ask', 'Is anything here?'], { env: { ASKQ_URL: secured.url } });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/UNAUTHORIZED/);
    expect(refused.stderr).toMatch(/ASKQ_API_KEY/);
  });
});

async function view(id: string): Promise<QuestionView> {
  return (await (await fetch(`${askq.url}/v1/questions/${id}`)).json()) as QuestionView;
}

/**
 * A TCP proxy to askq that cuts the client off once, right after the first bytes of a token event
 * went through, as a flaky network would.
 */
async function startCuttingProxy(port: string) {
  // Request heads in the order they arrived, whichever (keep-alive) connection carried them.
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const state = { cut: false };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: Number(port) });
    sockets.add(client).add(upstream);
    let request = '';
    let response = '';
    client.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1');
      // A head ends at its blank line; a POST body (JSON, one line) sits before the next head.
      const head = /(?:GET|POST|DELETE) \/\S* HTTP\/1\.1\r\n[\s\S]*?\r\n\r\n/g;
      let consumed = 0;
      for (let m = head.exec(request); m !== null; m = head.exec(request)) {
        heads.push(m[0]);
        consumed = head.lastIndex;
      }
      request = request.slice(consumed);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      response += chunk.toString('latin1');
      if (!state.cut && response.includes('event: token')) {
        state.cut = true;
        client.write(chunk, () => {
          client.destroy();
          upstream.destroy();
        });
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    heads,
    get cut() {
      return state.cut;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
