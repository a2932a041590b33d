import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CollectionView } from '@askq/shared';
import { startAskq, type TestAskq } from '../support/askq.js';

// `npm run ingest` as a user runs it, against a real askq: good files ingested, bad ones reported.
let askq: TestAskq;
let dir: string;

beforeAll(async () => {
  askq = await startAskq();
  dir = await mkdtemp(join(tmpdir(), 'askq-ingest-'));
  await mkdir(join(dir, 'guides'), { recursive: true });
  await writeFile(join(dir, 'intro.md'), '# Intro\n\nAskq answers questions over documents.');
  await writeFile(join(dir, 'guides', 'setup.md'), '# Setup\n\nRun npm install, then npm start.');
  await writeFile(join(dir, 'notes.txt'), 'Plain text notes about queues and workers.');
  await writeFile(join(dir, 'empty.md'), '   \n');
  await writeFile(join(dir, 'broken.txt'), Buffer.from([0x66, 0x6f, 0xff, 0xfe, 0x6f]));
  await writeFile(join(dir, 'picture.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
});
afterAll(async () => {
  await askq?.stop();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn('npm', ['run', '--silent', 'ingest', '--', ...args], {
    cwd: join(import.meta.dirname, '../..'),
    env: { ...process.env, ASKQ_URL: askq.url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, out }));
}

it('ingests the good files, reports the bad ones, and exits 1', async () => {
  const { code, out } = await run(['--collection', 'cli', dir]);
  expect(code).toBe(1);
  expect(out).toMatch(/3 files ingested \(\d+ chunks\) into collection "cli"/);
  expect(out).toMatch(/empty\.md.*empty/i);
  expect(out).toMatch(/broken\.txt.*UTF-8/i);
  expect(out).toMatch(/picture\.png/);
  const { collections } = (await (await fetch(`${askq.url}/v1/collections`)).json()) as {
    collections: CollectionView[];
  };
  expect(collections.find((c) => c.name === 'cli')).toMatchObject({ documents: 3 });
  const before = collections.find((c) => c.name === 'cli')!;
  // Ids are paths under the folder named, so running it again replaces rather than duplicates.
  const again = await run(['--collection', 'cli', dir]);
  expect(again.code).toBe(1);
  const after = (await (await fetch(`${askq.url}/v1/collections`)).json()) as {
    collections: CollectionView[];
  };
  expect(after.collections.find((c) => c.name === 'cli')).toMatchObject({
    documents: 3,
    chunks: before.chunks,
    version: before.version + 3,
  });
}, 60_000);

it('exits 2 with a clear message when askq cannot be reached', async () => {
  const { code, out } = await run([dir], { ASKQ_URL: 'http://127.0.0.1:1' });
  expect(code).toBe(2);
  expect(out).toMatch(/ASKQ_URL/);
}, 60_000);
