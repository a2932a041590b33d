import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// Every benchmark once, tiny, to prove it still runs and reports what docs/PERFORMANCE.md quotes.
// No timing is asserted: benchmarks measure, tests check behaviour.
const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const BENCHES = ['pickup', 'overhead', 'throughput', 'sse-fanout', 'cache-hit', 'token-latency'];

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
  }, 180_000);
});
