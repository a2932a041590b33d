import { defineScript, type Keys, type RedisClient } from '@askq/shared';
import type { TermCounts } from '../text/terms.js';
import type { CollectionRef } from './chroma-store.js';

/** A chunk as the lexical index takes it. */
export interface LexicalChunk {
  id: string;
  counts: TermCounts;
  /** Terms in the chunk, repeats included (BM25's document length). */
  length: number;
}

/** A chunk the lexical index ranks, with its BM25 score. */
export interface LexicalHit {
  chunkId: string;
  score: number;
}

/** Ranks a collection's chunks by BM25 over their terms. */
export interface LexicalIndex {
  /** Indexes chunks, replacing what was indexed under their ids. */
  index(ref: CollectionRef, chunks: LexicalChunk[]): Promise<void>;
  /** Removes a document's chunks from `fromIndex` on (ids `<documentId>#<index>`). */
  deleteChunks(ref: CollectionRef, documentId: string, fromIndex: number): Promise<void>;
  /** The best `limit` chunks for the terms (stemmed, as the chunks were), best first. */
  search(ref: CollectionRef, terms: string[], limit: number): Promise<LexicalHit[]>;
}

// BM25's usual parameters: term-frequency saturation and length normalisation.
const K1 = 1.2;
const B = 0.75;
// Impacts are stored in the member as four digits, 0000 for the highest: a range read of one
// term's postings then yields them best first, so a search reads a bounded prefix of each.
const IMPACT_STEPS = 9999;
// Most chunks written by one script call: a call blocks Redis while it runs.
const CHUNKS_PER_CALL = 25;
// Postings read per query term. Beyond this, a chunk is found only through its other terms or
// the vector search; BM25's best chunks for a term are always within it.
export const POSTINGS_PER_TERM = 200;
// Distinct query terms searched: a question is bounded, this bounds a search's reads too.
const MAX_QUERY_TERMS = 32;

// Shared by both writing scripts: removes a chunk's postings and returns its length (0: absent).
const DROP_LUA = `
local function drop(p, c, id)
  local old = redis.call('HGET', c, id)
  if not old then return nil end
  local len
  for field in string.gmatch(old, '%S+') do
    if not len then len = tonumber(field)
    else redis.call('ZREM', p, string.gsub(field, '|', ' ', 1) .. ' ' .. id) end
  end
  redis.call('HDEL', c, id)
  return len or 0
end
local p, c, s = KEYS[1], KEYS[2], KEYS[3]
local n = tonumber(redis.call('HGET', s, 'n') or '0')
local total = tonumber(redis.call('HGET', s, 'length') or '0')
`;

// ARGV: k1, b, steps, then per chunk: id, length, term count, and term, count pairs. A chunk's
// impact for a term is BM25's term-frequency part with the collection's mean length as it is now.
const INDEX_LUA = `${DROP_LUA}
local k1, b, steps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
while i <= #ARGV do
  local id, len, count = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i = i + 3
  local old = drop(p, c, id)
  if old then n = n - 1; total = total - old end
  n = n + 1; total = total + len
  local norm = k1 * (1 - b + b * len / (total / n))
  local parts = { tostring(len) }
  for j = 0, count - 1 do
    local term, tf = ARGV[i + 2 * j], tonumber(ARGV[i + 2 * j + 1])
    local impact = tf * (k1 + 1) / (tf + norm)
    local code = string.format('%04d', math.floor((1 - impact / (k1 + 1)) * steps + 0.5))
    redis.call('ZADD', p, 0, term .. ' ' .. code .. ' ' .. id)
    parts[#parts + 1] = term .. '|' .. code
  end
  i = i + 2 * count
  redis.call('HSET', c, id, table.concat(parts, ' '))
end
redis.call('HSET', s, 'n', n, 'length', total)
`;

// ARGV: document id, first chunk index, most chunks this call. Chunks are numbered from 0
// without gaps. Returns the index to go on from, or -1 when the document has no more.
const DELETE_LUA = `${DROP_LUA}
local index, last = tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3])
local more = -1
while true do
  if index >= last then more = index; break end
  local old = drop(p, c, ARGV[1] .. '#' .. index)
  if not old then break end
  n = n - 1; total = total - old; index = index + 1
end
redis.call('HSET', s, 'n', n, 'length', total)
return more
`;

// ARGV: postings per term, then the terms. Returns the chunk count, then per term its document
// frequency and its best postings.
const SEARCH_LUA = `
local out = { tonumber(redis.call('HGET', KEYS[2], 'n') or '0') }
for j = 2, #ARGV do
  local low, high = '[' .. ARGV[j] .. ' ', '(' .. ARGV[j] .. '!'
  out[#out + 1] = redis.call('ZLEXCOUNT', KEYS[1], low, high)
  out[#out + 1] = redis.call('ZRANGEBYLEX', KEYS[1], low, high, 'LIMIT', 0, tonumber(ARGV[1]))
end
return out
`;

/**
 * A BM25 index of a collection's chunks in Redis, beside the collection's registry (same slot):
 * one sorted set of postings, read by term prefix, so no worker holds a copy of it and it grows
 * with the collection, not with the workers. Each posting is ~ term + chunk id + 6 bytes, at most
 * 256 distinct terms per chunk. Writes go with the Chroma writes, under the collection's lock.
 */
export function createLexicalIndex(redis: RedisClient, keys: Keys): LexicalIndex {
  const write = defineScript<Array<string | number>, null>(redis, 'askqLexicalIndex', {
    keys: 3,
    lua: INDEX_LUA,
  });
  const remove = defineScript<[string, number, number], number>(redis, 'askqLexicalDelete', {
    keys: 3,
    lua: DELETE_LUA,
  });
  const read = defineScript<Array<string | number>, Array<number | string[]>>(
    redis,
    'askqLexicalSearch',
    { keys: 2, lua: SEARCH_LUA },
  );
  const keysOf = (ref: CollectionRef) => {
    const k = keys.lexical(ref.tenant, ref.collection);
    return [k.postings, k.chunks, k.stats];
  };

  return {
    async index(ref, chunks) {
      for (let at = 0; at < chunks.length; at += CHUNKS_PER_CALL) {
        const args: Array<string | number> = [K1, B, IMPACT_STEPS];
        for (const chunk of chunks.slice(at, at + CHUNKS_PER_CALL)) {
          args.push(chunk.id, chunk.length, chunk.counts.length);
          for (const [term, count] of chunk.counts) args.push(term, count);
        }
        await write(keysOf(ref), args);
      }
    },

    async deleteChunks(ref, documentId, fromIndex) {
      // In calls of a bounded size, like writes: a document may have thousands of chunks.
      for (let at = fromIndex; at >= 0;) {
        at = await remove(keysOf(ref), [documentId, at, CHUNKS_PER_CALL]);
      }
    },

    async search(ref, terms, limit) {
      const unique = [...new Set(terms)].slice(0, MAX_QUERY_TERMS);
      if (unique.length === 0) return [];
      const [postings, , stats] = keysOf(ref);
      const reply = await read([postings!, stats!], [POSTINGS_PER_TERM, ...unique]);
      const n = Number(reply[0]);
      const scores = new Map<string, number>();
      unique.forEach((term, j) => {
        const df = Number(reply[1 + 2 * j]);
        const members = reply[2 + 2 * j] as string[];
        // Lucene's BM25 idf: always positive, so a term in most chunks still counts a little.
        const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        for (const member of members) {
          // "<term> <4-digit code> <chunk id>"; chunk ids may hold spaces, so cut by position.
          const code = Number(member.slice(term.length + 1, term.length + 5));
          const chunkId = member.slice(term.length + 6);
          const impact = (1 - code / IMPACT_STEPS) * (K1 + 1);
          scores.set(chunkId, (scores.get(chunkId) ?? 0) + idf * impact);
        }
      });
      return [...scores]
        .map(([chunkId, score]) => ({ chunkId, score }))
        .sort((a, b) => b.score - a.score || (a.chunkId < b.chunkId ? -1 : 1))
        .slice(0, limit);
    },
  };
}
