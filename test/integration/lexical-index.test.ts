import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import MiniSearch from 'minisearch';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createKeys } from '@askq/shared';
import {
  createLexicalIndex,
  type LexicalIndex,
} from '../../apps/worker/src/knowledge/lexical-index.js';
import { termCounts, terms } from '../../apps/worker/src/text/terms.js';

// The BM25 index in a real Redis: its ranking against an independent BM25 (minisearch), and that
// it follows re-indexing, shortening and deletion, and is scoped by tenant and collection.
let redis: Redis;
let index: LexicalIndex;
const keys = createKeys(`lex${randomUUID().slice(0, 8)}`);
const ref = { tenant: 't1', collection: 'docs' };

const chunksOf = (documentId: string, texts: string[]) =>
  texts.map((text, i) => ({ id: `${documentId}#${i}`, ...termCounts(text) }));
const ids = async (question: string, at = ref) =>
  (await index.search(at, terms(question), 10)).map((h) => h.chunkId);

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
  index = createLexicalIndex(redis, keys);
});
afterAll(async () => {
  await redis?.quit();
});

const CORPUS: Record<string, string> = {
  tides:
    'Tides rise and fall twice a day. The Moon pulls the oceans; spring tides are the largest.',
  volcano: 'A volcano erupts when magma rises. Pompeii was buried by Vesuvius in the year 79.',
  bees: 'Honeybees dance to tell the hive where flowers are. The queen lays the eggs.',
  jazz: 'Jazz grew in New Orleans. Louis Armstrong played the trumpet and sang.',
  roast: 'Coffee beans crack twice while roasting; a dark roast is roasted past the second crack.',
  tcp: 'TCP resends lost segments and orders them; a three-way handshake opens a connection.',
};

it('ranks as BM25 does: the same first document as minisearch for each question', async () => {
  for (const [id, text] of Object.entries(CORPUS)) await index.index(ref, chunksOf(id, [text]));
  const bm25 = new MiniSearch({ fields: ['text'], storeFields: [] });
  bm25.addAll(Object.entries(CORPUS).map(([id, text]) => ({ id, text })));
  const questions = [
    'what buried pompeii',
    'which tides are largest',
    'who lays the eggs in a hive',
    'where did jazz start',
    'when does a roast crack a second time',
    'how does tcp open a connection',
  ];
  for (const question of questions) {
    const [ours] = await ids(question);
    const [theirs] = bm25.search(question);
    expect(ours?.split('#')[0], question).toBe(theirs?.id);
  }
});

it('follows re-indexing, a shortened document and deletion', async () => {
  const at = { tenant: 't1', collection: 'changes' };
  await index.index(
    at,
    chunksOf('guide', ['ferries leave at noon', 'the harbour has a lighthouse']),
  );
  expect(await ids('lighthouse', at)).toEqual(['guide#1']);
  // Re-ingested with other words: the old ones no longer find it.
  await index.index(at, chunksOf('guide', ['buses leave at noon', 'the station has a clock']));
  expect(await ids('lighthouse', at)).toEqual([]);
  expect(await ids('clock', at)).toEqual(['guide#1']);
  // Shortened to one chunk: its second is dropped from index 1 on.
  await index.deleteChunks(at, 'guide', 1);
  expect(await ids('clock', at)).toEqual([]);
  expect(await ids('buses', at)).toEqual(['guide#0']);
  await index.deleteChunks(at, 'guide', 0);
  expect(await ids('buses', at)).toEqual([]);
  // Nothing is left behind: postings, chunk entries and sizes are all back to empty.
  const k = keys.lexical(at.tenant, at.collection);
  expect(await redis.zcard(k.postings)).toBe(0);
  expect(await redis.hlen(k.chunks)).toBe(0);
  expect(await redis.hgetall(k.stats)).toEqual({ n: '0', length: '0' });
});

it('deletes a document of many chunks in bounded calls, every posting gone', async () => {
  const at = { tenant: 't4', collection: 'big' };
  const texts = Array.from({ length: 80 }, (_, i) => `chunk ${i} mentions harbours and word${i}`);
  await index.index(at, chunksOf('long', texts));
  expect(await ids('harbour', at)).toHaveLength(10);
  await index.deleteChunks(at, 'long', 0);
  const k = keys.lexical(at.tenant, at.collection);
  expect(await redis.zcard(k.postings)).toBe(0);
  expect(await redis.hgetall(k.stats)).toEqual({ n: '0', length: '0' });
});

it('keeps tenants and collections apart', async () => {
  await index.index({ tenant: 't2', collection: 'docs' }, chunksOf('secret', ['the vault code']));
  expect(await ids('vault code')).toEqual([]);
  expect(await ids('vault code', { tenant: 't2', collection: 'docs' })).toEqual(['secret#0']);
  expect(await ids('vault code', { tenant: 't2', collection: 'other' })).toEqual([]);
});

it('matches inflected forms and ignores stop words', async () => {
  const at = { tenant: 't3', collection: 'docs' };
  await index.index(at, chunksOf('stream', ['A client resumes the stream with Last-Event-ID.']));
  expect(await ids('how do I resume an event stream', at)).toEqual(['stream#0']);
  expect(await ids('what is the', at)).toEqual([]);
});
