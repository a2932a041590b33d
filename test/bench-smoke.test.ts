import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// Every benchmark once, tiny, to prove it still runs and reports what docs/PERFORMANCE.md quotes.
// No timing is asserted: benchmarks measure, tests check behaviour.
const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const BENCHES = [
  'pickup',
  'overhead',
  'throughput',
  'sse-fanout',
  'cache-hit',
  'token-latency',
  'ingest',
  'default-path',
  'growth',
];

describe.each(BENCHES)('npm run bench -- %s --smoke', (name) => {
  it('runs and prints a JSON summary beside its reference', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', name, '--smoke'],
      { cwd: root, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const summary = JSON.parse(stdout) as Record<string, unknown>;
    expect(summary.bench).toBe(name);
    expect(summary.smoke).toBe(true);
    // Each bench measures askq beside a reference in the same run, and reports the ratio.
    expect(JSON.stringify(summary)).toMatch(/ratio/i);
    if (name === 'overhead' || name === 'throughput') {
      // The CPU per question is also set against the raw libraries doing the same work.
      const floor = summary.clientFloor as {
        cpuMsPerCall: Record<string, number>;
        cpuMsPerQuestion: number;
      };
      expect(Object.keys(floor.cpuMsPerCall).sort()).toEqual(
        ['bullmqJob', 'chromaQuery', 'expressPost', 'openaiStream'].sort(),
      );
      for (const ms of Object.values(floor.cpuMsPerCall)) expect(ms).toBeGreaterThan(0);
      expect(summary.ratio).toHaveProperty('cpuVsClientFloor');
    }
    if (name === 'ingest') {
      expect(summary.ratio).toHaveProperty('chunksPerSecond');
      expect(summary.askq).toHaveProperty('pickupDuringIngestMs');
    }
    if (name === 'default-path') expect(summary.ratio).toHaveProperty('cpu');
    if (name === 'growth') {
      const askq = summary.askq as { retrieval: unknown[]; semantic: unknown[] };
      expect(askq.retrieval).toHaveLength(2);
      expect(askq.semantic).toHaveLength(2);
    }
  }, 180_000);
});

describe('npm run bench:chart', () => {
  it('draws the chart from the kept summaries', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'askq-chart-')), 'chart.svg');
    await run(process.execPath, ['--import', 'tsx', 'bench/chart.ts', out], { cwd: root });
    const svg = await readFile(out, 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('Retrieval as the collection grows');
  }, 60_000);
});
