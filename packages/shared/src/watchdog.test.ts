import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const fixture = join(import.meta.dirname, 'fixtures/stuck-process.ts');

async function run(...args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { code, signal, out };
}

describe('startWatchdog', () => {
  it('kills a process whose event loop is stuck, after logging why', async () => {
    const { signal, out } = await run('300');
    expect(signal).toBe('SIGKILL');
    const line = out.split('\n').find((l) => l.includes('event loop blocked'));
    expect(JSON.parse(line!)).toMatchObject({ level: 60, service: 'stuck' });
  }, 30_000);

  it('leaves a healthy process alone and does not keep it alive', async () => {
    const { code, signal, out } = await run('300', 'healthy');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(out).toContain('done');
    expect(out).not.toContain('event loop blocked');
  }, 30_000);
});
