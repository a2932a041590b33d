import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFiles, levelOneHeading, loadDocuments, readDocument } from './ingest-files.js';

// Sending (batchDocuments, ingest) is tested in ingest-send.test.ts.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'askq-ingest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(path: string, content: string | Uint8Array): Promise<string> {
  const file = join(dir, path);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, content);
  return file;
}

describe('collectFiles', () => {
  it('walks folders, keeps .md/.txt in order and says what it skipped', async () => {
    const root = join(dir, 'walk');
    await put('walk/b.md', '# B');
    await put('walk/A.TXT', 'a');
    await put('walk/sub/c.Md', 'c');
    await put('walk/logo.png', 'png');
    await put('walk/.git/notes.md', 'not a document');
    await put('walk/node_modules/pkg/README.md', 'not a document');
    const single = await put('single.txt', 'one');

    const { files, skipped, roots } = await collectFiles([
      root,
      single,
      join(dir, 'missing.md'),
      join(root, 'b.md'), // already reached through its folder
    ]);

    expect(files).toEqual([
      join(dir, 'single.txt'),
      join(root, 'A.TXT'),
      join(root, 'b.md'),
      join(root, 'sub/c.Md'),
    ]);
    expect(roots.get(join(root, 'sub/c.Md'))).toBe(root);
    expect(roots.get(single)).toBe(dir);
    expect(skipped).toEqual([
      { path: join(dir, 'missing.md'), reason: 'not found' },
      { path: join(root, '.git'), reason: expect.stringContaining('not searched') },
      { path: join(root, 'logo.png'), reason: 'not a .md or .txt file' },
      { path: join(root, 'node_modules'), reason: expect.stringContaining('not searched') },
    ]);
  });
});

describe('readDocument', () => {
  it('derives the id from the path under the root and the title from the first heading', async () => {
    const file = await put(
      'read/guides/getting started #1.md',
      '```sh\n# not a title\n```\n\n# Getting started #\n\nText.\n',
    );
    const { doc, problem } = await readDocument(file, join(dir, 'read'));
    expect(problem).toBeUndefined();
    expect(doc).toEqual({
      id: 'guides/getting-started--1',
      title: 'Getting started',
      text: '```sh\n# not a title\n```\n\n# Getting started #\n\nText.\n',
    });
  });

  it('falls back to the file name for the title of plain text', async () => {
    const file = await put('read/notes.txt', '# just text\n');
    expect((await readDocument(file, join(dir, 'read'))).doc).toMatchObject({
      id: 'notes',
      title: 'notes',
    });
  });

  it('reports empty, oversized and non-UTF-8 files', async () => {
    const empty = await put('bad/empty.md', ' \n\t\n');
    const big = await put('bad/big.txt', 'x'.repeat(1024 * 1024 + 1));
    const latin1 = await put('bad/latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9]));
    const quotes = await put('bad/quotes.txt', '"'.repeat(600 * 1024));
    const root = join(dir, 'bad');
    expect(await readDocument(empty, root)).toEqual({ problem: 'empty' });
    expect((await readDocument(big, root)).problem).toMatch(/larger than 1 MiB/);
    expect((await readDocument(latin1, root)).problem).toMatch(/UTF-8/);
    // Every quote doubles when JSON-encoded: under 1 MiB on disk, over it in a request.
    expect((await readDocument(quotes, root)).problem).toMatch(/too big/);
  });
});

describe('loadDocuments', () => {
  it('reads documents as `askq ingest` sends them, leaving out unusable files and twin ids', async () => {
    const root = join(dir, 'load');
    await put('load/guides/Set up#1.md', '# Setting up\n\nRun it.');
    await put('load/notes.txt', 'Plain notes.');
    await put('load/notes.md', '# Notes again');
    await put('load/empty.md', '  \n');
    await put('load/logo.png', 'png');

    const loaded = await loadDocuments([root], (path) => `<${path.slice(root.length + 1)}>`);

    // Ids are paths under the folder named, without the extension; whitespace and # become -.
    expect(loaded.docs).toEqual([
      { id: 'guides/Set-up-1', title: 'Setting up', text: '# Setting up\n\nRun it.' },
      { id: 'notes', title: 'Notes again', text: '# Notes again' },
    ]);
    expect(loaded.fileOf.get('notes')).toBe(join(root, 'notes.md'));
    expect(loaded.bad).toEqual([
      { path: join(root, 'empty.md'), reason: 'empty' },
      { path: join(root, 'notes.txt'), reason: 'same id "notes" as <notes.md>' },
    ]);
    expect(loaded.skipped).toEqual([
      { path: join(root, 'logo.png'), reason: 'not a .md or .txt file' },
    ]);
    expect(loaded.files).toHaveLength(4);
  });
});

describe('levelOneHeading', () => {
  it('reads ATX level-1 headings the way Markdown does', () => {
    expect(levelOneHeading('# Title')).toBe('Title');
    expect(levelOneHeading('   # Title ##  ')).toBe('Title');
    expect(levelOneHeading('# C#')).toBe('C#');
    expect(levelOneHeading('# ###')).toBeUndefined();
    expect(levelOneHeading('    # code, not a heading')).toBeUndefined();
    expect(levelOneHeading('#Title')).toBeUndefined();
    expect(levelOneHeading('## Second level')).toBeUndefined();
  });

  it('reads a heading with a long run of spaces in linear time', () => {
    const started = performance.now();
    expect(levelOneHeading(`# a${' '.repeat(1_000_000)}#y`)).toBe(`a${' '.repeat(1_000_000)}#y`);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('what the ingester refuses to read', () => {
  it('skips links out of the folder, FIFOs and devices, and binary files, each with a reason', async () => {
    const folder = join(dir, 'hostile');
    await put('hostile/ok.md', '# Fine\n\nA document.');
    await put('hostile/image.md', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0d]));
    await put('outside/secret.md', 'Not for the collection.');
    await symlink(join(dir, 'outside/secret.md'), join(folder, 'leak.md'));
    await symlink('/dev/zero', join(folder, 'zero.md'));
    await symlink(join(folder, 'ok.md'), join(folder, 'alias.md'));
    execFileSync('mkfifo', [join(folder, 'pipe.md')]);

    const { docs, skipped, bad } = await loadDocuments([folder]);
    expect(docs.map((d) => d.id).sort()).toEqual(['alias', 'ok']);
    const why = Object.fromEntries(
      [...skipped, ...bad].map((s) => [s.path.slice(folder.length + 1), s.reason]),
    );
    expect(why).toEqual({
      'leak.md': 'symbolic link out of the folder (not followed)',
      'zero.md': 'symbolic link out of the folder (not followed)',
      'pipe.md': 'not a regular file',
      'image.md': 'binary (holds NUL bytes)',
    });
  });

  it('does not follow a link out of the folder at read time either (a file swapped for one)', async () => {
    const folder = join(dir, 'swapped');
    await put('swapped/inside.md', 'Inside.');
    await put('elsewhere/secret.md', 'Secret.');
    await symlink(join(dir, 'elsewhere/secret.md'), join(folder, 'now-a-link.md'));
    // As if the file had been listed before it became a link.
    expect(await readDocument(join(folder, 'now-a-link.md'), folder)).toEqual({
      problem: 'symbolic link out of the folder',
    });
    await symlink(join(folder, 'inside.md'), join(folder, 'alias.md'));
    expect((await readDocument(join(folder, 'alias.md'), folder)).doc?.text).toBe('Inside.');
  });

  it('checks the opened file, not the path: a FIFO or a device named directly is not read', async () => {
    const fifo = join(dir, 'direct.fifo.md');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO for reading would wait for a writer; this must answer at once.
    expect(await readDocument(fifo, dir)).toEqual({ problem: 'not a regular file' });
    expect(await readDocument('/dev/zero', '/dev')).toEqual({ problem: 'not a regular file' });
  });

  it('reads no more than 1 MiB and a byte of any file', async () => {
    await put('big.md', 'x'.repeat(1024 * 1024 + 10));
    expect(await readDocument(join(dir, 'big.md'), dir)).toEqual({
      problem: 'larger than 1 MiB (too big for one request)',
    });
  });
});
