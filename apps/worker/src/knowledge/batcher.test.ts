import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher.js';

/** A run function whose requests stay open until the test settles them. */
function controlledRun() {
  const requests: Array<{
    key: string;
    items: number[];
    settle: (error?: Error) => void;
  }> = [];
  const run = (key: string, items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      requests.push({
        key,
        items,
        settle: (error) => (error ? reject(error) : resolve(items.map((n) => `${key}:${n * 10}`))),
      });
    });
  return { requests, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createBatcher', () => {
  it('sends a call to an idle key at once, alone', async () => {
    const { requests, run } = controlledRun();
    const call = createBatcher({ maxBatch: 8, run, timeoutMs: 60_000 });
    const result = call('a', 1);
    await tick();
    expect(requests.map((r) => r.items)).toEqual([[1]]);
    requests[0]!.settle();
    expect(await result).toBe('a:10');
  });

  it('holds calls that arrive while a request is out, then sends them together', async () => {
    const { requests, run } = controlledRun();
    const sizes: number[] = [];
    const call = createBatcher({
      maxBatch: 8,
      run,
      onBatch: (n) => sizes.push(n),
      timeoutMs: 60_000,
    });
    const first = call('a', 1);
    await tick();
    const later = [call('a', 2), call('a', 3), call('a', 4)];
    await tick();
    expect(requests).toHaveLength(1);
    requests[0]!.settle();
    await first;
    await tick();
    expect(requests.map((r) => r.items)).toEqual([[1], [2, 3, 4]]);
    requests[1]!.settle();
    expect(await Promise.all(later)).toEqual(['a:20', 'a:30', 'a:40']);
    expect(sizes).toEqual([1, 3]);
  });

  it('keeps keys apart: another key does not wait', async () => {
    const { requests, run } = controlledRun();
    const call = createBatcher({ maxBatch: 8, run, timeoutMs: 60_000 });
    const a = call('a', 1);
    const b = call('b', 2);
    await tick();
    expect(requests.map((r) => [r.key, r.items])).toEqual([
      ['a', [1]],
      ['b', [2]],
    ]);
    for (const r of requests) r.settle();
    expect(await Promise.all([a, b])).toEqual(['a:10', 'b:20']);
  });

  it('splits a long wait into batches of at most maxBatch, one after another', async () => {
    const { requests, run } = controlledRun();
    const call = createBatcher({ maxBatch: 2, run, timeoutMs: 60_000 });
    const all = [call('a', 1), call('a', 2), call('a', 3), call('a', 4), call('a', 5)];
    for (let i = 0; i < 3; i++) {
      await tick();
      expect(requests).toHaveLength(i + 1);
      requests[i]!.settle();
    }
    expect(await Promise.all(all)).toEqual(['a:10', 'a:20', 'a:30', 'a:40', 'a:50']);
    expect(requests.map((r) => r.items)).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('rejects every call of a failed batch, and the next batch still goes', async () => {
    const { requests, run } = controlledRun();
    const call = createBatcher({ maxBatch: 8, run, timeoutMs: 60_000 });
    const first = call('a', 1);
    await tick();
    const held = [call('a', 2), call('a', 3)];
    const failure = new Error('store down');
    requests[0]!.settle(failure);
    await expect(first).rejects.toBe(failure);
    await tick();
    requests[1]!.settle(failure);
    for (const p of held) await expect(p).rejects.toBe(failure);
    const after = call('a', 4);
    await tick();
    requests[2]!.settle();
    expect(await after).toBe('a:40');
  });

  it('rejects a batch whose results do not match its items, and a run that throws', async () => {
    const short = createBatcher<number, string>({
      maxBatch: 8,
      run: () => Promise.resolve([]),
      timeoutMs: 60_000,
    });
    await expect(short('a', 1)).rejects.toThrow('batch of 1 gave 0 results');
    const throwing = createBatcher<number, string>({
      maxBatch: 8,
      timeoutMs: 60_000,
      run: () => {
        throw new Error('bad request');
      },
    });
    await expect(throwing('a', 1)).rejects.toThrow('bad request');
    // The lane was released: a later call is sent, not held forever.
    await expect(throwing('a', 2)).rejects.toThrow('bad request');
  });

  it('fails a batch that never settles after timeoutMs, and sends the next one', async () => {
    const { requests, run } = controlledRun();
    const call = createBatcher({ maxBatch: 8, run, timeoutMs: 30 });
    const hung = call('a', 1);
    await tick();
    const held = call('a', 2);
    // The first request never answers: it times out, and the held call goes in a new request.
    await expect(hung).rejects.toThrow('no answer within 30 ms');
    await tick();
    expect(requests.map((r) => r.items)).toEqual([[1], [2]]);
    requests[1]!.settle();
    expect(await held).toBe('a:20');
    // The abandoned request answering late changes nothing.
    requests[0]!.settle();
  });
});
