import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ApiConfig } from '../apps/api/src/config.js';
import { WorkerConfig } from '../apps/worker/src/config.js';

// STYLE: `.env.example` lists every variable, so a newcomer sees all the knobs in one place.
it('.env.example lists every variable the API and the worker read', async () => {
  const text = await readFile(join(import.meta.dirname, '../.env.example'), 'utf8');
  const listed = new Set([...text.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
  const read = [...Object.keys(ApiConfig.shape), ...Object.keys(WorkerConfig.shape)];
  expect(read.filter((name) => !listed.has(name))).toEqual([]);
});
