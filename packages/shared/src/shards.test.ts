import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeys } from './keys.js';
import { questionShards, shardOf, splitConcurrency } from './shards.js';

describe('question shards', () => {
  it('keeps the unsharded prefix for shard 0 and a hash tag of its own for each other one', () => {
    const shards = questionShards(createKeys('askq'), 3);
    expect(shards.map((s) => s.prefix)).toEqual(['{askq}', '{askq:s1}', '{askq:s2}']);
    expect(questionShards(createKeys('askq'), 1)).toEqual([
      { index: 0, prefix: '{askq}', label: 'questions' },
    ]);
  });

  it('puts a question in the same shard every time', () => {
    const id = randomUUID();
    expect(shardOf(id, 4)).toBe(shardOf(id, 4));
    expect(shardOf(id, 1)).toBe(0);
  });

  it('spreads random ids evenly', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 8_000; i++) counts[shardOf(randomUUID(), 4)]!++;
    for (const count of counts) expect(count).toBeGreaterThan(1_700);
  });
});

describe('splitConcurrency', () => {
  it('splits evenly with the remainder first, keeping the total', () => {
    expect(splitConcurrency(8, 1)).toEqual([8]);
    expect(splitConcurrency(8, 3)).toEqual([3, 3, 2]);
    expect(splitConcurrency(8, 4)).toEqual([2, 2, 2, 2]);
  });

  it('gives every shard at least one when there are more shards than slots', () => {
    expect(splitConcurrency(2, 4)).toEqual([1, 1, 1, 1]);
  });
});
